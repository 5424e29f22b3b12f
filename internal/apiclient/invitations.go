package apiclient

import (
	"context"
	"encoding/json"
	"net/url"
	"strconv"
	"time"
)

// Invitation is an invitation as the API shows it (components/schemas/Invitation). It
// never carries a token.
type Invitation struct {
	ID             string          `json:"id"`
	Status         string          `json:"status"`
	Email          string          `json:"email"`
	Name           string          `json:"name"`
	OrganizationID string          `json:"organization_id"`
	Role           string          `json:"role"`
	InviterID      *string         `json:"inviter_id"`
	UserID         *string         `json:"user_id"`
	Locale         string          `json:"locale"`
	RedirectURL    *string         `json:"redirect_url"`
	Metadata       json.RawMessage `json:"metadata"`
	// ExpiresIn is a Go duration such as "168h0m0s".
	ExpiresIn     string     `json:"expires_in"`
	ExpiresAt     *time.Time `json:"expires_at"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
	AcceptedAt    *time.Time `json:"accepted_at"`
	RevokedAt     *time.Time `json:"revoked_at"`
	FailureReason *string    `json:"failure_reason"`
	Delivery      Delivery   `json:"delivery"`
}

// Delivery is where the newest message of an invitation stands.
type Delivery struct {
	Status    string  `json:"status"`
	Attempts  int     `json:"attempts"`
	LastError *string `json:"last_error"`
}

// InvitationFilter picks invitations to list; empty fields do not filter.
type InvitationFilter struct {
	Status         string
	Email          string
	OrganizationID string
}

// PageRequest asks for one page of a list: up to Limit items (0 means the server's
// default of 50; at most 200) after Cursor (empty for the first page).
type PageRequest struct {
	Limit  int
	Cursor string
}

// MaxPageSize is the largest page the API serves.
const MaxPageSize = 200

func (p PageRequest) set(q url.Values) {
	if p.Limit > 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	if p.Cursor != "" {
		q.Set("cursor", p.Cursor)
	}
}

// Page is one page of a list, newest first. NextCursor is nil on the last page.
type Page[T any] struct {
	Data       []T     `json:"data"`
	NextCursor *string `json:"next_cursor"`
}

func listPage[T any](ctx context.Context, c *Client, path string, q url.Values) (Page[T], error) {
	var out Page[T]
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	if err := c.do(ctx, "GET", path, nil, &out); err != nil {
		return Page[T]{}, err
	}
	if out.Data == nil {
		out.Data = []T{}
	}
	return out, nil
}

// walk calls list for every page from the first, until the last or until fn or list fails.
func walk[T any](ctx context.Context, limit int, list func(context.Context, PageRequest) (Page[T], error), fn func([]T) error) error {
	p := PageRequest{Limit: limit}
	for {
		page, err := list(ctx, p)
		if err != nil {
			return err
		}
		if err := fn(page.Data); err != nil {
			return err
		}
		if page.NextCursor == nil || *page.NextCursor == "" {
			return nil
		}
		p.Cursor = *page.NextCursor
	}
}

// ListInvitations reads one page of invitations: GET /v1/invitations.
func (c *Client) ListInvitations(ctx context.Context, f InvitationFilter, p PageRequest) (Page[Invitation], error) {
	q := url.Values{}
	if f.Status != "" {
		q.Set("status", f.Status)
	}
	if f.Email != "" {
		q.Set("email", f.Email)
	}
	if f.OrganizationID != "" {
		q.Set("organization_id", f.OrganizationID)
	}
	p.set(q)
	return listPage[Invitation](ctx, c, "/v1/invitations", q)
}

// WalkInvitations calls fn with every page of the invitations matching f, pageSize at a
// time (0: the server's default), following the cursors to the last page.
func (c *Client) WalkInvitations(ctx context.Context, f InvitationFilter, pageSize int, fn func([]Invitation) error) error {
	return walk(ctx, pageSize, func(ctx context.Context, p PageRequest) (Page[Invitation], error) {
		return c.ListInvitations(ctx, f, p)
	}, fn)
}

// GetInvitation reads an invitation: GET /v1/invitations/{id}.
func (c *Client) GetInvitation(ctx context.Context, id string) (Invitation, error) {
	return c.invitation(ctx, "GET", id, "", nil)
}

// RenewInvitation moves the expiry of a pending invitation, or reopens an expired one, to
// expiresIn (a Go duration such as "72h") from now; empty means the invitation's own
// expires_in. POST /v1/invitations/{id}/renew.
func (c *Client) RenewInvitation(ctx context.Context, id, expiresIn string) (Invitation, error) {
	var body any
	if expiresIn != "" {
		body = struct {
			ExpiresIn string `json:"expires_in"`
		}{expiresIn}
	}
	return c.invitation(ctx, "POST", id, "/renew", body)
}

// RevokeInvitation revokes a draft or pending invitation: POST /v1/invitations/{id}/revoke.
func (c *Client) RevokeInvitation(ctx context.Context, id string) (Invitation, error) {
	return c.invitation(ctx, "POST", id, "/revoke", nil)
}

// ResendInvitation sends a pending invitation again with a fresh link:
// POST /v1/invitations/{id}/resend.
func (c *Client) ResendInvitation(ctx context.Context, id string) (Invitation, error) {
	return c.invitation(ctx, "POST", id, "/resend", nil)
}

func (c *Client) invitation(ctx context.Context, method, id, action string, body any) (Invitation, error) {
	var out Invitation
	if err := c.do(ctx, method, "/v1/invitations/"+url.PathEscape(id)+action, body, &out); err != nil {
		return Invitation{}, err
	}
	return out, nil
}
