package testdb_test

import (
	"testing"

	"github.com/usherhq/usher/internal/testdb"
)

func TestMigratedDatabaseHasSchema(t *testing.T) {
	_, db := testdb.New(t)
	var tables int
	if err := db.Get(&tables, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name IN ('invitations','users','memberships','organizations')"); err != nil {
		t.Fatal(err)
	}
	if tables != 4 {
		t.Fatalf("found %d of the 4 core tables", tables)
	}
}
