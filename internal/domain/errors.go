// Package domain holds Usher's vocabulary: invitation statuses, the rules that move an
// invitation between them, and the error codes every layer speaks. It imports nothing of
// Usher's own so that workflows, activities, the store and the API can all share it.
package domain

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
)

// Code is a stable, snake_case error code that clients may branch on.
type Code string

const (
	CodeInvalidRequest         Code = "invalid_request"
	CodeInvalidEmail           Code = "invalid_email"
	CodeInvalidExpiry          Code = "invalid_expiry"
	CodeUnauthorized           Code = "unauthorized"
	CodeNotFound               Code = "not_found"
	CodeOrganizationNotFound   Code = "organization_not_found"
	CodeInvitationNotFound     Code = "invitation_not_found"
	CodeUserNotFound           Code = "user_not_found"
	CodeInviterNotFound        Code = "inviter_not_found"
	CodeAlreadyMember          Code = "already_member"
	CodeInvitationPending      Code = "invitation_pending"
	CodeInvalidState           Code = "invalid_state"
	CodeInvalidToken           Code = "invalid_token"
	CodeInvitationExpired      Code = "invitation_expired"
	CodeInvitationRevoked      Code = "invitation_revoked"
	CodeInvitationUsed         Code = "invitation_used"
	CodeWeakPassword           Code = "weak_password"
	CodeIdempotencyKeyReused   Code = "idempotency_key_reused"
	CodeRequestTooLarge        Code = "request_too_large"
	CodeUnsupportedMediaType   Code = "unsupported_media_type"
	CodeMethodNotAllowed       Code = "method_not_allowed"
	CodeTemporarilyUnavailable Code = "temporarily_unavailable"
	CodeInternal               Code = "internal_error"

	// Join requests.
	CodeMemberNotFound      Code = "member_not_found"
	CodeJoinRequestNotFound Code = "join_request_not_found"
	CodeAlreadyConfirmed    Code = "already_confirmed"
	CodeAlreadyDecided      Code = "already_decided"
	CodeJoinRequestExpired  Code = "join_request_expired"
	CodeRateLimited         Code = "rate_limited"

	// People on file.
	CodeBatchNotFound  Code = "batch_not_found"
	CodeSMSUnavailable Code = "sms_not_configured"

	// Outgoing webhooks.
	CodeWebhookEndpointNotFound Code = "webhook_endpoint_not_found"
	CodeWebhookDeliveryNotFound Code = "webhook_delivery_not_found"
	CodeWebhooksUnavailable     Code = "webhooks_not_configured"

	// Provider webhooks (POST /v1/webhooks/mailgun).
	CodeMailgunWebhooksDisabled  Code = "mailgun_webhooks_not_configured"
	CodeWebhookSignatureInvalid  Code = "invalid_signature"
	CodeWebhookSignatureStale    Code = "stale_signature"
	CodeWebhookSignatureReplayed Code = "replayed_signature"
)

// HTTPStatus is the one place where an error code meets an HTTP status.
func (c Code) HTTPStatus() int {
	switch c {
	case CodeInvalidRequest, CodeInvalidEmail, CodeInvalidExpiry, CodeSMSUnavailable:
		return http.StatusBadRequest
	case CodeWebhookEndpointNotFound, CodeWebhookDeliveryNotFound:
		return http.StatusNotFound
	case CodeWebhooksUnavailable:
		return http.StatusServiceUnavailable
	case CodeUnauthorized, CodeWebhookSignatureInvalid, CodeWebhookSignatureStale:
		return http.StatusUnauthorized
	case CodeWebhookSignatureReplayed:
		return http.StatusForbidden
	case CodeNotFound, CodeMailgunWebhooksDisabled, CodeOrganizationNotFound, CodeInvitationNotFound, CodeUserNotFound,
		CodeInviterNotFound, CodeInvalidToken, CodeMemberNotFound, CodeJoinRequestNotFound, CodeBatchNotFound:
		return http.StatusNotFound
	case CodeMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case CodeAlreadyMember, CodeInvitationPending, CodeInvalidState, CodeInvitationUsed, CodeAlreadyConfirmed, CodeAlreadyDecided:
		return http.StatusConflict
	case CodeInvitationExpired, CodeInvitationRevoked, CodeJoinRequestExpired:
		return http.StatusGone
	case CodeRequestTooLarge:
		return http.StatusRequestEntityTooLarge
	case CodeUnsupportedMediaType:
		return http.StatusUnsupportedMediaType
	case CodeWeakPassword, CodeIdempotencyKeyReused:
		return http.StatusUnprocessableEntity
	case CodeRateLimited:
		return http.StatusTooManyRequests
	case CodeTemporarilyUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// Error is a failure a client can act on. Anything that is not an *Error reaches clients
// as internal_error, with its text kept out of the response.
type Error struct {
	Code    Code           `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details,omitempty"`
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Errorf builds an *Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// WithDetail returns a copy of e with one more detail.
func (e *Error) WithDetail(key string, value any) *Error {
	details := maps.Clone(e.Details)
	if details == nil {
		details = map[string]any{}
	}
	details[key] = value
	return &Error{Code: e.Code, Message: e.Message, Details: details}
}

// ErrorCode extracts the code of err, or CodeInternal when err is not a domain error.
func ErrorCode(err error) Code {
	var de *Error
	if errors.As(err, &de) {
		return de.Code
	}
	return CodeInternal
}
