package domain

// JoinStatus is where a join request stands.
type JoinStatus string

const (
	JoinUnconfirmed JoinStatus = "unconfirmed"
	JoinPending     JoinStatus = "pending"
	JoinApproved    JoinStatus = "approved"
	JoinRejected    JoinStatus = "rejected"
	JoinExpired     JoinStatus = "expired"
	JoinCancelled   JoinStatus = "cancelled"
)

// JoinStatuses lists every join request status, for validating filters.
var JoinStatuses = []JoinStatus{JoinUnconfirmed, JoinPending, JoinApproved, JoinRejected, JoinExpired, JoinCancelled}

// Valid reports whether s is a known status.
func (s JoinStatus) Valid() bool {
	for _, known := range JoinStatuses {
		if s == known {
			return true
		}
	}
	return false
}

// Open reports whether the request still waits for someone.
func (s JoinStatus) Open() bool { return s == JoinUnconfirmed || s == JoinPending }

// JoinAction is something a person can do to a join request.
type JoinAction string

const (
	JoinActionConfirm JoinAction = "confirm"
	JoinActionApprove JoinAction = "approve"
	JoinActionReject  JoinAction = "reject"
	JoinActionCancel  JoinAction = "cancel"
	// Decided by the workflow itself.
	JoinActionExpire JoinAction = "expire"
	JoinActionRemind JoinAction = "remind"
)

// CheckJoinAction says whether action is allowed in status s, and if not, why.
func CheckJoinAction(s JoinStatus, action JoinAction) error {
	switch action {
	case JoinActionConfirm:
		if s == JoinUnconfirmed {
			return nil
		}
		if s == JoinPending || s == JoinApproved || s == JoinRejected {
			return Errorf(CodeAlreadyConfirmed, "this request was already confirmed").WithDetail("status", string(s))
		}
	case JoinActionApprove, JoinActionReject:
		if s == JoinPending {
			return nil
		}
		if s == JoinApproved || s == JoinRejected {
			return Errorf(CodeAlreadyDecided, "this request was already %s", s).WithDetail("status", string(s))
		}
	case JoinActionCancel:
		if s.Open() {
			return nil
		}
	}
	if s == JoinExpired {
		return Errorf(CodeJoinRequestExpired, "this request has expired").WithDetail("status", string(s))
	}
	return Errorf(CodeInvalidState, "cannot %s a join request in status %q", action, s).WithDetail("status", string(s))
}

// Join request windows.
const (
	DefaultConfirmWindow  = 24 * 60 * 60 // seconds; an unconfirmed request expires after a day
	DefaultDecisionWindow = 14 * 24 * 60 * 60
)

// JoinRoles are the roles a member may give an approved visitor.
var JoinRoles = []string{"member", "admin", "guest"}
