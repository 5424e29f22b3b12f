package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The CLI is package main, so these tests build the binary (without the dev command,
// as production does) and run it against the stack's API.
var usherBinary struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

func buildUsher(t *testing.T) string {
	t.Helper()
	usherBinary.once.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			usherBinary.err = fmt.Errorf("building the usher binary needs the go tool on PATH: %w", err)
			return
		}
		dir, err := os.MkdirTemp("", "usher-e2e-cli-")
		if err != nil {
			usherBinary.err = err
			return
		}
		usherBinary.path = filepath.Join(dir, "usher")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, goTool, "build", "-tags", "nodev", "-o", usherBinary.path, "github.com/usherhq/usher/cmd/usher")
		usherBinary.out, usherBinary.err = cmd.CombinedOutput()
	})
	if usherBinary.err != nil {
		t.Fatalf("building cmd/usher: %v\n%s", usherBinary.err, usherBinary.out)
	}
	return usherBinary.path
}

// usherCLI runs the usher binary with the stack's API address and key.
func usherCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, buildUsher(t), args...)
	cmd.Env = append(os.Environ(), "USHER_API_URL="+env.api.URL, "USHER_API_KEY="+env.apiKey)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		code = exitErr.ExitCode()
	default:
		t.Fatalf("usher %s: %v", strings.Join(args, " "), err)
	}
	return code, out.String(), errOut.String()
}

// TestCLIBulkRenew renews an organization's expired invitations with
// "usher invitations renew --status expired --organization ORG": one of them cannot be
// reopened (a newer invitation for the same address is open), so the CLI exits 1 and
// reports it by its error code; the others are pending again and e-mailed a fresh link.
func TestCLIBulkRenew(t *testing.T) {
	buildUsher(t) // before the invitations expire: a cold build takes a while
	org := createOrganization(t, "CLI Org", nil)
	other := createOrganization(t, "CLI Other Org", nil)
	emails := []string{uniqueEmail(t, "cli-a"), uniqueEmail(t, "cli-b"), uniqueEmail(t, "cli-c")}
	var ids []string
	for _, email := range emails {
		ids = append(ids, invite(t, map[string]any{"email": email, "organization_id": org, "expires_in": "2s"}).str("id"))
	}
	elsewhere := invite(t, map[string]any{"email": emails[0], "organization_id": other, "expires_in": "2s"}).str("id")
	for _, id := range append(slices.Clone(ids), elsewhere) {
		waitForStatus(t, id, "expired")
	}
	// A new invitation for the third address: its expired one cannot be reopened.
	blocker := invite(t, map[string]any{"email": emails[2], "organization_id": org}).str("id")

	code, stdout, stderr := usherCLI(t, "invitations", "list", "--status", "expired", "--organization", org)
	if code != 0 || strings.Count(stdout, "\n") != 4 || !strings.HasPrefix(stdout, "ID ") {
		t.Fatalf("list: exit %d\n%s\n%s", code, stdout, stderr)
	}

	code, stdout, stderr = usherCLI(t, "invitations", "renew", "--status", "expired", "--organization", org, "--expires-in", "72h", "--json")
	if code != 1 {
		t.Fatalf("renew: exit %d, want 1 (one failed)\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	var report struct {
		Matched, Succeeded, Failed int
		FailuresByCode             map[string]int `json:"failures_by_code"`
		Failures                   []struct {
			ID, Code string
			Details  map[string]any
		}
		Invitations []struct {
			ID, Status string
			ExpiresAt  time.Time `json:"expires_at"`
		}
	}
	if err := json.Unmarshal([]byte(stdout), &report); err != nil {
		t.Fatalf("renew --json: %v\n%s", err, stdout)
	}
	if report.Matched != 3 || report.Succeeded != 2 || report.Failed != 1 || report.FailuresByCode["invitation_pending"] != 1 {
		t.Fatalf("report:\n%s", stdout)
	}
	if f := report.Failures[0]; f.ID != ids[2] || f.Details["invitation_id"] != blocker {
		t.Errorf("failure %+v, want %s blocked by %s", f, ids[2], blocker)
	}
	for _, inv := range report.Invitations {
		if inv.Status != "pending" || time.Until(inv.ExpiresAt) < 71*time.Hour || time.Until(inv.ExpiresAt) > 73*time.Hour {
			t.Errorf("renewed invitation %+v, want pending for 72h", inv)
		}
	}
	for _, i := range []int{0, 1} {
		if r := call(t, "GET", "/v1/invitations/"+ids[i], nil); r.str("status") != "pending" {
			t.Errorf("invitation %s is %s after the renewal", ids[i], r.str("status"))
		}
		waitForMail(t, emails[i], "invitation", 2) // reopened: a fresh link
	}
	if r := call(t, "GET", "/v1/invitations/"+elsewhere, nil); r.str("status") != "expired" {
		t.Errorf("the other organization's invitation is %s; the filter should have left it alone", r.str("status"))
	}

	// Again, in a table: only the blocked one is left, and it fails again.
	code, stdout, _ = usherCLI(t, "invitations", "renew", "--status", "expired", "--organization", org)
	if code != 1 || !strings.HasPrefix(stdout, "Renewed 0 of 1 invitation; 1 failed.\n") || !strings.Contains(stdout, "invitation_pending  1") {
		t.Errorf("second renew: exit %d\n%s", code, stdout)
	}
}
