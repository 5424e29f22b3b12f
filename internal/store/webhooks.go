package store

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/usherhq/usher/internal/domain"
)

// Webhook delivery statuses.
const (
	WebhookPending   = "pending"
	WebhookDelivered = "delivered"
	WebhookFailed    = "failed"
)

// WebhookEndpoint is an app's registered receiver of events.
type WebhookEndpoint struct {
	ID             string   `db:"id"`
	URL            string   `db:"url"`
	Events         []string `db:"-"`
	OrganizationID *string  `db:"organization_id"`
	Description    string   `db:"description"`
	// SecretCiphertext is the signing secret, sealed (see internal/webhooks.Sealer).
	SecretCiphertext []byte     `db:"secret_ciphertext"`
	CreatedAt        time.Time  `db:"created_at"`
	DisabledAt       *time.Time `db:"disabled_at"`

	EventsJSON []byte `db:"events"`
}

const webhookEndpointColumns = `id, url, events, organization_id, description, secret_ciphertext, created_at, disabled_at`

func (ep *WebhookEndpoint) decode() {
	ep.Events = []string{}
	_ = json.Unmarshal(ep.EventsJSON, &ep.Events)
}

// CreateWebhookEndpoint stores an endpoint; it receives the events recorded from now on.
func (s *Store) CreateWebhookEndpoint(ctx context.Context, ep WebhookEndpoint) (WebhookEndpoint, error) {
	ep.ID, ep.CreatedAt, ep.DisabledAt = NewID(), s.timestamp(), nil
	var err error
	if ep.EventsJSON, err = json.Marshal(ep.Events); err != nil {
		return ep, err
	}
	if ep.OrganizationID != nil {
		if _, err := s.GetOrganization(ctx, *ep.OrganizationID); err != nil {
			return ep, err
		}
	}
	_, err = s.db.NamedExecContext(ctx, `INSERT INTO webhook_endpoints (`+webhookEndpointColumns+`)
		VALUES (:id, :url, :events, :organization_id, :description, :secret_ciphertext, :created_at, :disabled_at)`, ep)
	return ep, err
}

// GetWebhookEndpoint returns the endpoint with id, disabled or not.
func (s *Store) GetWebhookEndpoint(ctx context.Context, id string) (WebhookEndpoint, error) {
	var ep WebhookEndpoint
	err := s.db.GetContext(ctx, &ep, `SELECT `+webhookEndpointColumns+` FROM webhook_endpoints WHERE id = ?`, id)
	if isNotFound(err) {
		return ep, domain.Errorf(domain.CodeWebhookEndpointNotFound, "no webhook endpoint with id %q", id)
	}
	ep.decode()
	return ep, err
}

// ListWebhookEndpoints returns endpoints newest first, after the keyset cursor afterID.
func (s *Store) ListWebhookEndpoints(ctx context.Context, afterID string, limit int) ([]WebhookEndpoint, error) {
	query, args := `SELECT `+webhookEndpointColumns+` FROM webhook_endpoints`, []any{}
	if afterID != "" {
		query, args = query+` WHERE id < ?`, append(args, afterID)
	}
	out := []WebhookEndpoint{}
	if err := s.db.SelectContext(ctx, &out, query+` ORDER BY id DESC LIMIT ?`, append(args, limit)...); err != nil {
		return nil, err
	}
	for i := range out {
		out[i].decode()
	}
	return out, nil
}

// DisableWebhookEndpoint stops queueing events for the endpoint; deliveries under way stop
// at their next attempt. Disabling twice is fine.
func (s *Store) DisableWebhookEndpoint(ctx context.Context, id string) (WebhookEndpoint, error) {
	if _, err := s.db.ExecContext(ctx, `UPDATE webhook_endpoints SET disabled_at = ? WHERE id = ? AND disabled_at IS NULL`,
		s.timestamp(), id); err != nil {
		return WebhookEndpoint{}, err
	}
	return s.GetWebhookEndpoint(ctx, id)
}

// WebhookDelivery is one event on its way to one endpoint.
type WebhookDelivery struct {
	ID                string     `db:"id"`
	EndpointID        string     `db:"endpoint_id"`
	EventID           string     `db:"event_id"`
	EventType         string     `db:"event_type"`
	Status            string     `db:"status"`
	AttemptCount      int        `db:"attempts"`
	LastStatusCode    *int       `db:"last_status_code"`
	LastError         *string    `db:"last_error"`
	LastAttemptAt     *time.Time `db:"last_attempt_at"`
	NextAttemptAt     *time.Time `db:"next_attempt_at"`
	WorkflowStartedAt *time.Time `db:"workflow_started_at"`
	CreatedAt         time.Time  `db:"created_at"`
	UpdatedAt         time.Time  `db:"updated_at"`
	FinishedAt        *time.Time `db:"finished_at"`

	// Attempts is filled by ListWebhookDeliveries and GetWebhookDelivery, oldest first.
	Attempts []WebhookAttempt `db:"-"`
}

const webhookDeliveryColumns = `id, endpoint_id, event_id, event_type, status, attempts, last_status_code, last_error,
	last_attempt_at, next_attempt_at, workflow_started_at, created_at, updated_at, finished_at`

// WebhookAttempt is one HTTP request of a delivery.
type WebhookAttempt struct {
	DeliveryID   string    `db:"delivery_id"`
	Attempt      int       `db:"attempt"`
	AttemptedAt  time.Time `db:"attempted_at"`
	DurationMS   int       `db:"duration_ms"`
	StatusCode   *int      `db:"status_code"`
	Error        *string   `db:"error"`
	ResponseBody *string   `db:"response_body"`
}

// ListWebhookDeliveries returns an endpoint's deliveries newest first, each with its
// attempts, after the keyset cursor afterID.
func (s *Store) ListWebhookDeliveries(ctx context.Context, endpointID, afterID string, limit int) ([]WebhookDelivery, error) {
	query, args := `SELECT `+webhookDeliveryColumns+` FROM webhook_deliveries WHERE endpoint_id = ?`, []any{endpointID}
	if afterID != "" {
		query, args = query+` AND id < ?`, append(args, afterID)
	}
	out := []WebhookDelivery{}
	if err := s.db.SelectContext(ctx, &out, query+` ORDER BY id DESC LIMIT ?`, append(args, limit)...); err != nil {
		return nil, err
	}
	return out, s.loadAttempts(ctx, out)
}

// GetWebhookDelivery returns one delivery of an endpoint with its attempts.
func (s *Store) GetWebhookDelivery(ctx context.Context, endpointID, id string) (WebhookDelivery, error) {
	var d WebhookDelivery
	err := s.db.GetContext(ctx, &d, `SELECT `+webhookDeliveryColumns+` FROM webhook_deliveries WHERE id = ? AND endpoint_id = ?`, id, endpointID)
	if isNotFound(err) {
		return d, domain.Errorf(domain.CodeWebhookDeliveryNotFound, "no delivery %q of webhook endpoint %q", id, endpointID)
	}
	if err != nil {
		return d, err
	}
	list := []WebhookDelivery{d}
	err = s.loadAttempts(ctx, list)
	return list[0], err
}

func (s *Store) loadAttempts(ctx context.Context, deliveries []WebhookDelivery) error {
	if len(deliveries) == 0 {
		return nil
	}
	ids := make([]string, len(deliveries))
	index := make(map[string]int, len(deliveries))
	for i, d := range deliveries {
		ids[i], index[d.ID] = d.ID, i
		deliveries[i].Attempts = []WebhookAttempt{}
	}
	query, args, err := sqlx.In(`SELECT delivery_id, attempt, attempted_at, duration_ms, status_code, error, response_body
		FROM webhook_attempts WHERE delivery_id IN (?) ORDER BY id`, ids)
	if err != nil {
		return err
	}
	var attempts []WebhookAttempt
	if err := s.db.SelectContext(ctx, &attempts, query, args...); err != nil {
		return err
	}
	for _, a := range attempts {
		i := index[a.DeliveryID]
		deliveries[i].Attempts = append(deliveries[i].Attempts, a)
	}
	return nil
}

// UnstartedWebhookDeliveries lists deliveries whose workflow has not been started, oldest
// first.
func (s *Store) UnstartedWebhookDeliveries(ctx context.Context, limit int) ([]WebhookDelivery, error) {
	out := []WebhookDelivery{}
	err := s.db.SelectContext(ctx, &out, `SELECT `+webhookDeliveryColumns+` FROM webhook_deliveries
		WHERE workflow_started_at IS NULL ORDER BY created_at LIMIT ?`, limit)
	return out, err
}

// MarkWebhookDeliveryStarted records that the delivery's workflow exists.
func (s *Store) MarkWebhookDeliveryStarted(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE webhook_deliveries SET workflow_started_at = ? WHERE id = ? AND workflow_started_at IS NULL`,
		s.timestamp(), id)
	return err
}

// WebhookTarget is everything one attempt of a delivery needs.
type WebhookTarget struct {
	Delivery WebhookDelivery
	Endpoint WebhookEndpoint
	Event    Event
}

// GetWebhookTarget loads a delivery with its endpoint and event.
func (s *Store) GetWebhookTarget(ctx context.Context, deliveryID string) (WebhookTarget, error) {
	var t WebhookTarget
	err := s.db.GetContext(ctx, &t.Delivery, `SELECT `+webhookDeliveryColumns+` FROM webhook_deliveries WHERE id = ?`, deliveryID)
	if isNotFound(err) {
		return t, domain.Errorf(domain.CodeWebhookDeliveryNotFound, "no webhook delivery %q", deliveryID)
	}
	if err != nil {
		return t, err
	}
	if t.Endpoint, err = s.GetWebhookEndpoint(ctx, t.Delivery.EndpointID); err != nil {
		return t, err
	}
	t.Event, err = s.GetEvent(ctx, t.Delivery.EventID)
	return t, err
}

// GetEvent returns the event with id.
func (s *Store) GetEvent(ctx context.Context, id string) (Event, error) {
	var row struct {
		ID             string    `db:"id"`
		Type           string    `db:"type"`
		OrganizationID *string   `db:"organization_id"`
		SubjectID      string    `db:"subject_id"`
		OccurredAt     time.Time `db:"occurred_at"`
		Data           []byte    `db:"data"`
	}
	err := s.db.GetContext(ctx, &row, `SELECT id, type, organization_id, subject_id, occurred_at, data FROM events WHERE id = ?`, id)
	if err != nil {
		return Event{}, err
	}
	return Event{ID: row.ID, Type: row.Type, OrganizationID: deref(row.OrganizationID), SubjectID: row.SubjectID,
		OccurredAt: row.OccurredAt, Data: row.Data}, nil
}

// RecordWebhookAttempt stores one attempt and what it means for its delivery: delivered
// on success; otherwise still pending, with the time of the next attempt if known.
func (s *Store) RecordWebhookAttempt(ctx context.Context, a WebhookAttempt, delivered bool, nextAttemptAt *time.Time) error {
	now := s.timestamp()
	a.AttemptedAt = a.AttemptedAt.UTC().Truncate(time.Microsecond)
	if a.Error != nil {
		e := truncate(*a.Error, 500)
		a.Error = &e
	}
	if a.ResponseBody != nil {
		b := truncate(*a.ResponseBody, 1024)
		a.ResponseBody = &b
	}
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.NamedExecContext(ctx, `INSERT INTO webhook_attempts (delivery_id, attempt, attempted_at, duration_ms, status_code, error, response_body)
			VALUES (:delivery_id, :attempt, :attempted_at, :duration_ms, :status_code, :error, :response_body)`, a); err != nil {
			return err
		}
		status, finished := WebhookPending, (*time.Time)(nil)
		if delivered {
			status, finished, nextAttemptAt = WebhookDelivered, &now, nil
		}
		_, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET status = ?, attempts = attempts + 1, last_status_code = ?, last_error = ?,
			last_attempt_at = ?, next_attempt_at = ?, finished_at = ?, updated_at = ? WHERE id = ? AND status = ?`,
			status, a.StatusCode, a.Error, a.AttemptedAt, nextAttemptAt, finished, now, a.DeliveryID, WebhookPending)
		return err
	})
}

// FailWebhookDelivery marks a delivery failed for good (retries ran out, or the endpoint
// was disabled). A delivered one stays delivered.
func (s *Store) FailWebhookDelivery(ctx context.Context, id, reason string) error {
	now := s.timestamp()
	var r *string
	if reason != "" {
		t := truncate(reason, 500)
		r = &t
	}
	_, err := s.db.ExecContext(ctx, `UPDATE webhook_deliveries SET status = ?, last_error = COALESCE(?, last_error), next_attempt_at = NULL,
		finished_at = ?, updated_at = ? WHERE id = ? AND status = ?`, WebhookFailed, r, now, now, id, WebhookPending)
	return err
}
