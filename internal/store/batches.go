package store

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/usherhq/usher/internal/domain"
)

// Batch invites many people on file at once.
type Batch struct {
	ID               string     `db:"id"`
	Channel          string     `db:"channel"`
	ExpiresInSeconds int64      `db:"expires_in_seconds"`
	Total            int        `db:"total"`
	FinishedAt       *time.Time `db:"finished_at"`
	CreatedAt        time.Time  `db:"created_at"`
}

// BatchTarget is one person a batch invites.
type BatchTarget struct {
	OrganizationID string `db:"organization_id"`
	UserID         string `db:"user_id"`
}

// BatchItem is one person of a batch, numbered from 0.
type BatchItem struct {
	BatchID        string  `db:"batch_id"`
	Seq            int     `db:"seq"`
	OrganizationID string  `db:"organization_id"`
	UserID         string  `db:"user_id"`
	State          string  `db:"state"`
	InvitationID   *string `db:"invitation_id"`
	Error          *string `db:"error"`
}

// Batch item states.
const (
	ItemPending = "pending"
	ItemDone    = "done"
	ItemError   = "error"
)

// CreateBatch stores a batch and its people, each once: a person listed twice is invited once.
func (s *Store) CreateBatch(ctx context.Context, channel string, expiresIn time.Duration, targets []BatchTarget) (Batch, error) {
	now := s.timestamp()
	b := Batch{ID: NewID(), Channel: channel, ExpiresInSeconds: int64(expiresIn / time.Second), CreatedAt: now}
	seen := make(map[BatchTarget]bool, len(targets))
	var items []BatchItem
	for _, t := range targets {
		if seen[t] {
			continue
		}
		seen[t] = true
		items = append(items, BatchItem{BatchID: b.ID, Seq: len(items), OrganizationID: t.OrganizationID, UserID: t.UserID, State: ItemPending})
	}
	b.Total = len(items)
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.NamedExecContext(ctx, `INSERT INTO batches (id, channel, expires_in_seconds, total, created_at)
			VALUES (:id, :channel, :expires_in_seconds, :total, :created_at)`, b); err != nil {
			return err
		}
		for start := 0; start < len(items); start += 1000 {
			end := min(start+1000, len(items))
			if _, err := tx.NamedExecContext(ctx, `INSERT INTO batch_items (batch_id, seq, organization_id, user_id, state)
				VALUES (:batch_id, :seq, :organization_id, :user_id, :state)`, items[start:end]); err != nil {
				return err
			}
		}
		return nil
	})
	return b, err
}

func (s *Store) GetBatch(ctx context.Context, id string) (Batch, error) {
	var b Batch
	err := s.db.GetContext(ctx, &b, `SELECT id, channel, expires_in_seconds, total, finished_at, created_at FROM batches WHERE id = ?`, id)
	if isNotFound(err) {
		return b, domain.Errorf(domain.CodeBatchNotFound, "no batch with id %q", id)
	}
	return b, err
}

// BatchItems returns the items with from <= seq < to.
func (s *Store) BatchItems(ctx context.Context, batchID string, from, to int) ([]BatchItem, error) {
	out := []BatchItem{}
	err := s.db.SelectContext(ctx, &out, `SELECT batch_id, seq, organization_id, user_id, state, invitation_id, error
		FROM batch_items WHERE batch_id = ? AND seq >= ? AND seq < ? ORDER BY seq`, batchID, from, to)
	return out, err
}

// FinishBatchItem records what became of one person of a batch.
func (s *Store) FinishBatchItem(ctx context.Context, batchID string, seq int, invitationID *string, errReason string) error {
	state, reason := ItemDone, (*string)(nil)
	if errReason != "" {
		r := truncate(errReason, 200)
		state, reason = ItemError, &r
	}
	_, err := s.db.ExecContext(ctx, `UPDATE batch_items SET state = ?, invitation_id = ?, error = ? WHERE batch_id = ? AND seq = ?`,
		state, invitationID, reason, batchID, seq)
	return err
}

func (s *Store) FinishBatch(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE batches SET finished_at = COALESCE(finished_at, ?) WHERE id = ?`, s.timestamp(), id)
	return err
}

// BatchProgress counts where a batch's people stand.
type BatchProgress struct {
	Total  int `db:"total"`
	Queued int `db:"queued"`
	Sent   int `db:"sent"`
	Failed int `db:"failed"`
	// Done is sent + failed: the people the batch is through with.
	Done int `db:"done"`
}

// GetBatchProgress derives the counts from the items and their invitations.
func (s *Store) GetBatchProgress(ctx context.Context, id string) (BatchProgress, error) {
	var p BatchProgress
	err := s.db.GetContext(ctx, &p, `SELECT COUNT(*) AS total,
		COALESCE(SUM(outcome = 'queued'), 0) AS queued,
		COALESCE(SUM(outcome = 'sent'), 0) AS sent,
		COALESCE(SUM(outcome = 'failed'), 0) AS failed,
		COALESCE(SUM(outcome <> 'queued'), 0) AS done
		FROM (SELECT CASE
			WHEN b.state = 'error' THEN 'failed'
			WHEN b.state = 'pending' OR i.id IS NULL THEN 'queued'
			WHEN i.status = 'failed' OR i.delivery_status = 'failed' THEN 'failed'
			WHEN i.status = 'accepted' OR i.delivery_status IN ('sent', 'delivered') THEN 'sent'
			-- Revoked or expired before anything went out: never to be sent.
			WHEN i.status IN ('revoked', 'expired') THEN 'failed'
			ELSE 'queued' END AS outcome
			FROM batch_items b LEFT JOIN invitations i ON i.id = b.invitation_id WHERE b.batch_id = ?) o`, id)
	return p, err
}

// MarkBatchStarted records that the batch's workflow exists.
func (s *Store) MarkBatchStarted(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE batches SET workflow_started_at = ? WHERE id = ? AND workflow_started_at IS NULL`, s.timestamp(), id)
	return err
}

// UnstartedBatches lists batches stored before olderThan whose workflow was never started.
func (s *Store) UnstartedBatches(ctx context.Context, olderThan time.Time, limit int) ([]Batch, error) {
	out := []Batch{}
	err := s.db.SelectContext(ctx, &out, `SELECT id, channel, expires_in_seconds, total, finished_at, created_at FROM batches
		WHERE workflow_started_at IS NULL AND created_at < ? ORDER BY created_at LIMIT ?`, olderThan.UTC(), limit)
	return out, err
}
