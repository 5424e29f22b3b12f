package apiclient

import (
	"context"
	"net/url"
	"time"
)

// JoinRequest is a visitor's request to join a member's organization as the API shows it
// (components/schemas/JoinRequest). It never carries the tokens of its links.
type JoinRequest struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	// StatusReason says why Usher closed the request itself ("already_member"), or nil.
	StatusReason     *string    `json:"status_reason"`
	MemberID         string     `json:"member_id"`
	OrganizationID   string     `json:"organization_id"`
	VisitorEmail     string     `json:"visitor_email"`
	VisitorName      string     `json:"visitor_name"`
	Message          string     `json:"message"`
	Locale           string     `json:"locale"`
	Role             *string    `json:"role"`
	UserID           *string    `json:"user_id"`
	ConfirmExpiresAt time.Time  `json:"confirm_expires_at"`
	DecideBy         *time.Time `json:"decide_by"`
	CreatedAt        time.Time  `json:"created_at"`
	UpdatedAt        time.Time  `json:"updated_at"`
	ConfirmedAt      *time.Time `json:"confirmed_at"`
	DecidedAt        *time.Time `json:"decided_at"`
}

// JoinRequestFilter picks join requests to list; empty fields do not filter.
type JoinRequestFilter struct {
	Status   string
	MemberID string
}

// ListJoinRequests reads one page of join requests: GET /v1/join-requests.
func (c *Client) ListJoinRequests(ctx context.Context, f JoinRequestFilter, p PageRequest) (Page[JoinRequest], error) {
	q := url.Values{}
	if f.Status != "" {
		q.Set("status", f.Status)
	}
	if f.MemberID != "" {
		q.Set("member_id", f.MemberID)
	}
	p.set(q)
	return listPage[JoinRequest](ctx, c, "/v1/join-requests", q)
}

// WalkJoinRequests calls fn with every page of the join requests matching f, pageSize at
// a time (0: the server's default), following the cursors to the last page.
func (c *Client) WalkJoinRequests(ctx context.Context, f JoinRequestFilter, pageSize int, fn func([]JoinRequest) error) error {
	return walk(ctx, pageSize, func(ctx context.Context, p PageRequest) (Page[JoinRequest], error) {
		return c.ListJoinRequests(ctx, f, p)
	}, fn)
}

// GetJoinRequest reads a join request: GET /v1/join-requests/{id}.
func (c *Client) GetJoinRequest(ctx context.Context, id string) (JoinRequest, error) {
	return c.joinRequest(ctx, "GET", id, "", nil)
}

// ApproveJoinRequest approves a pending request on the member's behalf, giving the visitor
// role ("member", "admin" or "guest"; empty means member):
// POST /v1/join-requests/{id}/approve.
func (c *Client) ApproveJoinRequest(ctx context.Context, id, role string) (JoinRequest, error) {
	var body any
	if role != "" {
		body = struct {
			Role string `json:"role"`
		}{role}
	}
	return c.joinRequest(ctx, "POST", id, "/approve", body)
}

// RejectJoinRequest rejects a pending request on the member's behalf:
// POST /v1/join-requests/{id}/reject. The API takes no reason.
func (c *Client) RejectJoinRequest(ctx context.Context, id string) (JoinRequest, error) {
	return c.joinRequest(ctx, "POST", id, "/reject", nil)
}

// CancelJoinRequest cancels an unconfirmed or pending request:
// POST /v1/join-requests/{id}/cancel.
func (c *Client) CancelJoinRequest(ctx context.Context, id string) (JoinRequest, error) {
	return c.joinRequest(ctx, "POST", id, "/cancel", nil)
}

func (c *Client) joinRequest(ctx context.Context, method, id, action string, body any) (JoinRequest, error) {
	var out JoinRequest
	if err := c.do(ctx, method, "/v1/join-requests/"+url.PathEscape(id)+action, body, &out); err != nil {
		return JoinRequest{}, err
	}
	return out, nil
}
