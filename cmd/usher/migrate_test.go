//go:build !nodev

package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/usherhq/usher/internal/config"
	"github.com/usherhq/usher/internal/devtemporal"
	"github.com/usherhq/usher/workflows"
)

// On a namespace without Usher's search attributes the worker refuses to start and says how
// to add them; `usher migrate`'s registration adds them, once.
func TestSearchAttributesAreRegisteredByMigrateAndRequiredByTheWorker(t *testing.T) {
	server, err := devtemporal.Start(devtemporal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := config.Defaults
	cfg.TemporalAddress, cfg.TemporalNamespace = server.FrontendAddress(), server.Namespace()
	tc, err := client.DialContext(ctx, client.Options{HostPort: cfg.TemporalAddress, Namespace: cfg.TemporalNamespace, Logger: sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler))})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	p := &process{cfg: cfg, temporal: tc}

	err = checkSearchAttributes(ctx, p)
	if err == nil || !strings.Contains(err.Error(), "usher migrate") || !strings.Contains(err.Error(), "--name UsherStatus --type Keyword") {
		t.Fatalf("worker check on a bare namespace: %v", err)
	}
	added, err := registerSearchAttributes(ctx, cfg, 30*time.Second, workflows.SearchAttributeTypes())
	if err != nil || len(added) != len(workflows.SearchAttributeTypes()) {
		t.Fatalf("first registration added %v: %v", added, err)
	}
	if added, err := registerSearchAttributes(ctx, cfg, 30*time.Second, workflows.SearchAttributeTypes()); err != nil || len(added) != 0 {
		t.Fatalf("second registration added %v: %v", added, err)
	}
	if err := checkSearchAttributes(ctx, p); err != nil {
		t.Fatalf("worker check after registration: %v", err)
	}
}
