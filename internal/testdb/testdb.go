// Package testdb gives each test run its own freshly migrated MariaDB/MySQL database.
package testdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"

	"github.com/usherhq/usher/migrations"
)

// DefaultServerDSN is the local MariaDB that scripts/ensure-mariadb.sh provides.
const DefaultServerDSN = "root@tcp(127.0.0.1:3306)/"

// ServerDSN is the server the tests use: USHER_TEST_MYSQL_DSN, or the local default.
func ServerDSN() string {
	if dsn := os.Getenv("USHER_TEST_MYSQL_DSN"); dsn != "" {
		return dsn
	}
	return DefaultServerDSN
}

// Database is a migrated database that exists for one test run.
type Database struct {
	DSN string
	DB  *sqlx.DB
	// Drop removes the database; call it when the run ends.
	Drop func()
}

// Create makes an empty database with a random name on ServerDSN and migrates it.
func Create(ctx context.Context) (*Database, error) {
	cfg, err := mysql.ParseDSN(ServerDSN())
	if err != nil {
		return nil, fmt.Errorf("USHER_TEST_MYSQL_DSN: %w", err)
	}
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	name := "usher_test_" + hex.EncodeToString(suffix)

	server, err := sqlx.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return nil, err
	}
	defer server.Close()
	if _, err := server.ExecContext(ctx, "CREATE DATABASE "+name+" CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"); err != nil {
		return nil, fmt.Errorf("cannot create a test database on %s (is MariaDB running? run scripts/ensure-mariadb.sh): %w", cfg.Addr, err)
	}
	drop := func() {
		if db, err := sqlx.Open("mysql", cfg.FormatDSN()); err == nil {
			_, _ = db.Exec("DROP DATABASE IF EXISTS " + name)
			_ = db.Close()
		}
	}

	cfg.DBName = name
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	dsn := cfg.FormatDSN()
	db, err := sqlx.Open("mysql", dsn)
	if err != nil {
		drop()
		return nil, err
	}
	if err := migrations.Up(ctx, db.DB); err != nil {
		_ = db.Close()
		drop()
		return nil, err
	}
	return &Database{DSN: dsn, DB: db, Drop: func() { _ = db.Close(); drop() }}, nil
}

// New creates a database for one test and drops it when the test ends.
func New(tb testing.TB) (string, *sqlx.DB) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := Create(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(d.Drop)
	return d.DSN, d.DB
}
