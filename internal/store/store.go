// Package store is Usher's MySQL layer: every query lives here, built only with bound
// parameters. It speaks the domain package's types and errors.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
)

// Store wraps a connection pool.
type Store struct {
	db  *sqlx.DB
	now func() time.Time

	// observer hears of every event after its transaction commits (events.go).
	observer       atomic.Pointer[func(Event)]
	webhooksQueued chan struct{}
}

// New returns a Store on db. now may be nil (wall clock).
func New(db *sqlx.DB, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{db: db, now: now, webhooksQueued: make(chan struct{}, 1)}
}

// Open connects to dsn with the settings Usher relies on: UTC times parsed into time.Time.
func Open(dsn string) (*sqlx.DB, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("USHER_MYSQL_DSN: %w", err)
	}
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["time_zone"] = "'+00:00'"
	db, err := sqlx.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(50)
	db.SetMaxIdleConns(25)
	db.SetConnMaxLifetime(5 * time.Minute)
	return db, nil
}

// DB exposes the pool for health checks.
func (s *Store) DB() *sqlx.DB { return s.db }

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

func (s *Store) timestamp() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// NewID returns a time-ordered UUID (v7), so that ordering by ID is ordering by creation.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

// ValidID reports whether id has the shape of an ID Usher issues.
func ValidID(id string) bool {
	_, err := uuid.Parse(id)
	return err == nil && len(id) == 36
}

// inTx runs fn in a transaction. The events fn records (recordEvent) reach the event
// observer, and queued webhooks the dispatcher, only once the transaction has committed.
func (s *Store) inTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	rec := &txRecord{}
	recording.Store(tx, rec)
	defer recording.Delete(tx)
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	s.afterCommit(rec)
	return nil
}

func isDuplicate(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1062
}

func isNotFound(err error) bool { return errors.Is(err, sql.ErrNoRows) }
