package domain

import (
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"time"
)

// Status is where an invitation stands in its life.
type Status string

const (
	StatusDraft    Status = "draft"
	StatusPending  Status = "pending"
	StatusAccepted Status = "accepted"
	StatusExpired  Status = "expired"
	StatusRevoked  Status = "revoked"
	StatusFailed   Status = "failed"
)

// Statuses lists every status, for validating filters.
var Statuses = []Status{StatusDraft, StatusPending, StatusAccepted, StatusExpired, StatusRevoked, StatusFailed}

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	for _, known := range Statuses {
		if s == known {
			return true
		}
	}
	return false
}

// Open reports whether the invitation can still become accepted without being reopened.
func (s Status) Open() bool { return s == StatusDraft || s == StatusPending }

// Final reports whether nothing can change the status any more. Expired is not final:
// renewing reopens it.
func (s Status) Final() bool {
	return s == StatusAccepted || s == StatusRevoked || s == StatusFailed
}

// Action is something a person can ask an invitation to do.
type Action string

const (
	ActionSend   Action = "send"
	ActionResend Action = "resend"
	ActionRenew  Action = "renew"
	ActionRevoke Action = "revoke"
	ActionAccept Action = "accept"
	// Decided by the workflow itself, never asked for.
	ActionExpire Action = "expire"
	ActionFail   Action = "fail"
	// ActionRemind: a reminder before the expiry, with a fresh link (like a resend).
	ActionRemind Action = "remind"
)

// CheckAction says whether action is allowed in status s, and if not, why, as the error a
// client should see. Workflow validators and the API share it so both refuse alike.
func CheckAction(s Status, action Action) error {
	allowed := false
	switch action {
	case ActionSend:
		allowed = s == StatusDraft
	case ActionResend:
		allowed = s == StatusPending
	case ActionRenew:
		allowed = s == StatusPending || s == StatusExpired
	case ActionRevoke:
		allowed = s == StatusDraft || s == StatusPending
	case ActionAccept:
		switch s {
		case StatusPending:
			return nil
		case StatusExpired:
			return Errorf(CodeInvitationExpired, "the invitation has expired; ask the inviter for a new one")
		case StatusRevoked:
			return Errorf(CodeInvitationRevoked, "the invitation was revoked")
		case StatusAccepted:
			return Errorf(CodeInvitationUsed, "the invitation has already been accepted")
		default:
			return Errorf(CodeInvalidState, "an invitation in status %q cannot be accepted", s)
		}
	}
	if allowed {
		return nil
	}
	return Errorf(CodeInvalidState, "cannot %s an invitation in status %q", action, s).
		WithDetail("status", string(s))
}

// DeliveryStatus tracks the invitation e-mail through the provider.
type DeliveryStatus string

const (
	DeliveryNone    DeliveryStatus = "none"
	DeliveryQueued  DeliveryStatus = "queued"
	DeliverySending DeliveryStatus = "sending"
	DeliverySent    DeliveryStatus = "sent"
	DeliveryFailed  DeliveryStatus = "failed"
	// DeliveryDelivered: the provider reported the message delivered to the recipient's
	// mail server (Mailgun's "delivered" event webhook).
	DeliveryDelivered DeliveryStatus = "delivered"
)

// DeliveryOutcome is what the provider reported about a message after accepting it.
type DeliveryOutcome string

const (
	OutcomeDelivered DeliveryOutcome = "delivered"
	// OutcomeDeferred: a temporary failure; the provider keeps trying.
	OutcomeDeferred DeliveryOutcome = "deferred"
	// OutcomeFailed: the provider gave up for good (a bounce).
	OutcomeFailed DeliveryOutcome = "failed"
	// OutcomeComplained: the recipient marked the message as spam.
	OutcomeComplained DeliveryOutcome = "complained"
)

// Roles a membership can have.
var Roles = []string{"owner", "admin", "member", "guest"}

const DefaultRole = "member"

// ValidRole reports whether role is one Usher knows.
func ValidRole(role string) bool {
	for _, r := range Roles {
		if r == role {
			return true
		}
	}
	return false
}

// Expiry bounds for an invitation.
const (
	DefaultExpiresIn = 168 * time.Hour
	MinExpiresIn     = time.Second
	MaxExpiresIn     = 720 * time.Hour
)

// ParseExpiresIn reads a Go duration and checks it is within bounds; empty means the default.
func ParseExpiresIn(raw string) (time.Duration, error) {
	if raw == "" {
		return DefaultExpiresIn, nil
	}
	d, err := time.ParseDuration(raw)
	if err != nil {
		return 0, Errorf(CodeInvalidExpiry, "expires_in %q is not a duration such as \"72h\"", raw)
	}
	// Stored and shown in whole seconds; expires_at must agree with expires_in.
	d = d.Truncate(time.Second)
	if d < MinExpiresIn || d > MaxExpiresIn {
		return 0, Errorf(CodeInvalidExpiry, "expires_in must be between %s and %s", MinExpiresIn, MaxExpiresIn)
	}
	return d, nil
}

// NormalizeEmail checks that raw is a single bare address and returns it with the domain
// lower-cased and surrounding space removed. The local part is lower-cased too: in practice
// no provider distinguishes case there, and treating Ann@ and ann@ as two people would
// create two accounts for one person.
func NormalizeEmail(raw string) (string, error) {
	trimmed := strings.TrimSpace(raw)
	invalid := Errorf(CodeInvalidEmail, "%q is not a valid e-mail address", raw)
	if trimmed == "" || len(trimmed) > 254 {
		return "", invalid
	}
	addr, err := mail.ParseAddress(trimmed)
	if err != nil || addr.Name != "" || addr.Address != trimmed {
		return "", invalid
	}
	at := strings.LastIndexByte(trimmed, '@')
	local, host := trimmed[:at], trimmed[at+1:]
	if len(local) > 64 || !hostPattern.MatchString(host) {
		return "", invalid
	}
	return strings.ToLower(trimmed), nil
}

var hostPattern = regexp.MustCompile(`^(?i)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$`)

// EmailHint shows enough of an address to recognise it, not enough to harvest it:
// "ann.smith@example.com" becomes "a***@example.com".
func EmailHint(email string) string {
	at := strings.LastIndexByte(email, '@')
	if at <= 0 {
		return "***"
	}
	return fmt.Sprintf("%c***%s", email[0], email[at:])
}

// Locales with e-mail templates; anything else falls back to DefaultLocale.
var Locales = []string{"en"}

const DefaultLocale = "en"

var localePattern = regexp.MustCompile(`^[a-z]{2}(-[A-Z]{2})?$`)

// ValidLocale reports whether locale looks like a BCP 47 language tag Usher accepts.
func ValidLocale(locale string) bool { return localePattern.MatchString(locale) }
