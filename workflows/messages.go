package workflows

import (
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/usherhq/usher/internal/domain"
)

// InvitationInput starts an invitation workflow. It holds IDs and times only: the e-mail
// address and everything else personal stays in MySQL, out of workflow history.
type InvitationInput struct {
	InvitationID string
	// Status is draft or pending for a new invitation, expired for a reopened one.
	Status    domain.Status
	ExpiresIn time.Duration
	// ExpiresAt of a pending invitation, as stored when it was created.
	ExpiresAt time.Time

	// What the Temporal UI shows about the invitation, by ID (empty in runs started before
	// they were added).
	OrganizationID string `json:",omitempty"`
	Role           string `json:",omitempty"`
	Channel        string `json:",omitempty"`
	InviterID      string `json:",omitempty"`
	BatchID        string `json:",omitempty"`
}

// InvitationOutcome is how an invitation workflow run ended.
type InvitationOutcome struct {
	Status domain.Status
	UserID string `json:",omitempty"`
}

// RenewRequest is the argument of the renew update.
type RenewRequest struct {
	ExpiresIn time.Duration
}

// AcceptRequest is the argument of the accept update. It names the link that was used by
// its delivery key, never by its token; a password chosen with the accept waits in MySQL
// under AttemptID.
type AcceptRequest struct {
	DeliveryKey string
	AttemptID   string
	Name        string
}

// AcceptResult is the answer to an accept.
type AcceptResult struct {
	UserID       string
	ExistingUser bool
	PasswordSet  bool
	// NeedsPassword: an account put on file before the invitation, activated by it, still
	// without a password.
	NeedsPassword bool `json:",omitempty"`
}

// ResendRequest is the optional argument of the resend update. A resend with a Key the
// workflow has already carried out is a no-op, so a batch retried after a crash sends once.
type ResendRequest struct {
	Key string `json:",omitempty"`
}

// Activity arguments.
type (
	StatusChange struct {
		EventKey     string
		InvitationID string
		Action       domain.Action
		From         domain.Status
		To           domain.Status
		Reason       string
		ExpiresAt    *time.Time
		DeliveryKey  string
	}
	DeliveryRequest struct {
		InvitationID string
		DeliveryKey  string
	}
	AcceptActivityRequest struct {
		InvitationID string
		AttemptID    string
		Name         string
		EventKey     string
	}
	SetPasswordRequest struct {
		InvitationID string
		UserID       string
		DeliveryKey  string
	}
)

// ClientError carries a domain error through Temporal to the API, keeping its code.
func ClientError(err *domain.Error) error {
	return temporal.NewApplicationErrorWithOptions(err.Message, string(err.Code), temporal.ApplicationErrorOptions{
		NonRetryable: true,
		Details:      []any{err.Details},
	})
}

// DomainError recovers the domain error a workflow or activity refused with, if any.
func DomainError(err error) (*domain.Error, bool) {
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) {
		return nil, false
	}
	code := domain.Code(appErr.Type())
	if code.HTTPStatus() >= 500 {
		return nil, false
	}
	out := &domain.Error{Code: code, Message: appErr.Message()}
	var details map[string]any
	if appErr.HasDetails() && appErr.Details(&details) == nil && len(details) > 0 {
		out.Details = details
	}
	return out, true
}
