// Package testdb gives each test run its own freshly migrated MariaDB/MySQL database.
package testdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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

// New creates an empty database, migrates it, and drops it when the test ends. It returns
// the DSN of the new database (for code under test that opens its own pool) and a pool.
func New(tb testing.TB) (string, *sqlx.DB) {
	tb.Helper()
	cfg, err := mysql.ParseDSN(ServerDSN())
	if err != nil {
		tb.Fatalf("USHER_TEST_MYSQL_DSN: %v", err)
	}
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	name := "usher_test_" + hex.EncodeToString(suffix)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	server, err := sqlx.Open("mysql", cfg.FormatDSN())
	if err != nil {
		tb.Fatal(err)
	}
	defer server.Close()
	if _, err := server.ExecContext(ctx, "CREATE DATABASE "+name+" CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"); err != nil {
		tb.Fatalf("cannot create a test database on %s (is MariaDB running? run scripts/ensure-mariadb.sh): %v", cfg.Addr, err)
	}
	tb.Cleanup(func() {
		drop, err := sqlx.Open("mysql", cfg.FormatDSN())
		if err == nil {
			_, _ = drop.Exec("DROP DATABASE IF EXISTS " + name)
			_ = drop.Close()
		}
	})

	cfg.DBName = name
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	dsn := cfg.FormatDSN()
	db, err := sqlx.Open("mysql", dsn)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	if err := migrations.Up(ctx, db.DB); err != nil {
		tb.Fatal(err)
	}
	return dsn, db
}
