package apiclient

import (
	"context"
	"errors"
	"io"
	"net/url"
	"strconv"
	"time"
)

// ImportRequest is a CSV import: POST /v1/users/import.
type ImportRequest struct {
	OrganizationID string
	// SendInvitations invites everyone of a good row in one batch (ImportResult.BatchID).
	SendInvitations bool
	// Channel ("email" or "sms") and ExpiresIn (a Go duration such as "72h") go with
	// SendInvitations; empty means the server's default.
	Channel   string
	ExpiresIn string
	// CSV is the file, header first (email,name,phone,locale,role). It is streamed, not
	// buffered; ImportUsers does not close it.
	CSV io.Reader
}

// ImportResult is the answer to an import.
type ImportResult struct {
	// Rows read, not counting the header.
	Rows int `json:"rows"`
	// Imported rows: Rows minus the bad ones.
	Imported int `json:"imported"`
	// Created accounts, for addresses that had none.
	Created int `json:"created"`
	// Errors lists the bad rows in file order.
	Errors []ImportError `json:"errors"`
	// BatchID is the batch inviting everyone imported; nil without SendInvitations or
	// when no row was good.
	BatchID *string `json:"batch_id"`
}

// ImportError is a bad row of an import.
type ImportError struct {
	// Row is the row number in the file, the header being row 1.
	Row int `json:"row,omitempty"`
	// Field is the column at fault, when there is one.
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason"`
}

// ImportUsers puts the people of a CSV file on an organization's file, and invites them
// if asked.
func (c *Client) ImportUsers(ctx context.Context, req ImportRequest) (ImportResult, error) {
	if req.CSV == nil {
		return ImportResult{}, errors.New("apiclient: ImportRequest.CSV is nil")
	}
	q := url.Values{}
	q.Set("organization_id", req.OrganizationID)
	q.Set("send_invitation", strconv.FormatBool(req.SendInvitations))
	if req.Channel != "" {
		q.Set("channel", req.Channel)
	}
	if req.ExpiresIn != "" {
		q.Set("expires_in", req.ExpiresIn)
	}
	var out ImportResult
	if err := c.do(ctx, "POST", "/v1/users/import?"+q.Encode(), rawBody{contentType: "text/csv", r: req.CSV}, &out); err != nil {
		return ImportResult{}, err
	}
	if out.Errors == nil {
		out.Errors = []ImportError{}
	}
	return out, nil
}

// Batch is a batch of invitations and where its people stand. Done = Sent + Failed and
// Queued + Done = Total.
type Batch struct {
	ID      string `json:"id"`
	Channel string `json:"channel"`
	Total   int    `json:"total"`
	Queued  int    `json:"queued"`
	Sent    int    `json:"sent"`
	Failed  int    `json:"failed"`
	Done    int    `json:"done"`
	// Finished is true once the batch has invited everyone and Done = Total.
	Finished   bool       `json:"finished"`
	CreatedAt  time.Time  `json:"created_at"`
	FinishedAt *time.Time `json:"finished_at"`
}

// GetBatch reads a batch: GET /v1/batches/{id}.
func (c *Client) GetBatch(ctx context.Context, id string) (Batch, error) {
	var out Batch
	if err := c.do(ctx, "GET", "/v1/batches/"+url.PathEscape(id), nil, &out); err != nil {
		return Batch{}, err
	}
	return out, nil
}
