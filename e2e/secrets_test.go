package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"

	"github.com/usherhq/usher/workflows"
)

// TestSecretsStayOutOfHistoriesLogsAndMetrics runs the journeys that handle secrets (an
// invitation accepted with a password, a set-password link, a join request approved and
// its password set), then exports the history of every finished workflow, the logs of the
// API, the worker and the Temporal client, and /metrics, and fails if any token from the
// e-mails, any password, any bcrypt hash or the API key appears in them.
func TestSecretsStayOutOfHistoriesLogsAndMetrics(t *testing.T) {
	stopLogs := captureLogs()
	logsStopped := false
	defer func() {
		if !logsStopped {
			stopLogs()
		}
	}()
	start := time.Now().Add(-time.Second)
	secrets := map[string]string{"API key": env.apiKey}
	hashOf := func(email string) {
		t.Helper()
		var hash string
		if err := env.db.DB.Get(&hash, "SELECT password_hash FROM users WHERE email = ?", email); err != nil {
			t.Fatal(err)
		}
		secrets["password hash of "+email] = hash
		secrets["bcrypt digest of "+email] = hash[len(hash)-31:] // without the cost and salt
	}
	org := createOrganization(t, "Secret Keepers", nil)
	inviterID, inviterEmail := createMember(t, org, "Ines Inviter")

	// An invitation accepted with a password.
	alice := uniqueEmail(t, "alice")
	aliceID := invite(t, map[string]any{"email": alice, "name": "Alice", "organization_id": org, "inviter_id": inviterID}).str("id")
	secrets["invitation token"] = tokenIn(t, waitForMail(t, alice, "invitation", 1)[0], "invite")
	secrets["password chosen on accept"] = "alice's secret passphrase"
	expect(t, call(t, "POST", "/v1/public/invitations/accept", map[string]any{"token": secrets["invitation token"],
		"name": "Alice", "password": secrets["password chosen on accept"]}, withoutKey), http.StatusOK, "")
	hashOf(alice)

	// An invitation accepted without one: the set-password link.
	bob := uniqueEmail(t, "bob")
	bobID := invite(t, map[string]any{"email": bob, "name": "Bob", "organization_id": org}).str("id")
	secrets["second invitation token"] = tokenIn(t, waitForMail(t, bob, "invitation", 1)[0], "invite")
	expect(t, call(t, "POST", "/v1/public/invitations/accept", map[string]any{"token": secrets["second invitation token"]}, withoutKey), http.StatusOK, "")
	secrets["set-password token"] = tokenIn(t, waitForMail(t, bob, "set_password", 1)[0], "password")
	secrets["password set by link"] = "bob's own long password"
	expect(t, call(t, "POST", "/v1/public/password", map[string]any{"token": secrets["set-password token"],
		"password": secrets["password set by link"]}, withoutKey), http.StatusOK, "")
	hashOf(bob)

	// A join request: confirmed, approved by link, and the visitor's password set.
	publishProfile(t, inviterID, org, "Ines I.")
	visitor := uniqueEmail(t, "visitor")
	joinID := call(t, "POST", "/v1/public/join-requests", map[string]any{"member_id": inviterID, "name": "Vic", "email": visitor}, withoutKey).str("id")
	secrets["join confirmation token"] = tokenIn(t, waitForMail(t, visitor, "join_confirm", 1)[0], "join/confirm")
	expect(t, call(t, "POST", "/v1/public/join-requests/confirm", map[string]any{"token": secrets["join confirmation token"]}, withoutKey), http.StatusOK, "")
	secrets["join decision token"] = tokenIn(t, waitForMail(t, inviterEmail, "join_request", 1)[0], "join-requests")
	expect(t, call(t, "POST", "/v1/public/join-requests/decide", map[string]any{"token": secrets["join decision token"], "decision": "approve"}, withoutKey), http.StatusOK, "")
	secrets["joiner's set-password token"] = tokenIn(t, waitForMail(t, visitor, "join_approved", 1)[0], "password")
	secrets["joiner's password"] = "vic's secret passphrase"
	expect(t, call(t, "POST", "/v1/public/password", map[string]any{"token": secrets["joiner's set-password token"],
		"password": secrets["joiner's password"]}, withoutKey), http.StatusOK, "")
	hashOf(visitor)

	// Wait for the journey's workflows to finish.
	journey := []string{workflows.InvitationWorkflowID(aliceID), workflows.InvitationWorkflowID(bobID), workflows.JoinRequestWorkflowID(joinID)}
	finished := map[string]bool{}
	var runs [][2]string
	eventually(t, 60*time.Second, "the journey's workflows to finish", func() bool {
		runs = finishedRuns(t, start)
		for _, r := range runs {
			finished[r[0]] = true
		}
		for _, id := range journey {
			if !finished[id] {
				return false
			}
		}
		return true
	})

	leaks := func(what, text string) {
		t.Helper()
		for name, secret := range secrets {
			if secret != "" && strings.Contains(text, secret) {
				t.Errorf("the %s appears in %s", name, what)
			}
		}
	}
	for _, r := range runs {
		leaks("the history of "+r[0], string(exportHistory(t, r[0], r[1])))
	}
	res, err := http.Get(env.api.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metricsText, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(metricsText), "usher_http_requests_total") {
		t.Fatalf("/metrics: %d", res.StatusCode)
	}
	leaks("/metrics", string(metricsText))
	logged := stopLogs()
	logsStopped = true
	if !strings.Contains(logged, "/v1/public/password") {
		t.Fatalf("the captured logs lack the journey's requests (%d bytes)", len(logged))
	}
	leaks("the logs", logged)
	t.Logf("checked %d finished workflows, %d bytes of logs, %d bytes of metrics for %d secrets", len(runs), len(logged), len(metricsText), len(secrets))
}

// finishedRuns lists every workflow run that started after since and is no longer running,
// as (workflow ID, run ID).
func finishedRuns(t *testing.T, since time.Time) [][2]string {
	t.Helper()
	var out [][2]string
	var next []byte
	for {
		resp, err := env.client.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: env.temporal.Namespace(), NextPageToken: next,
			Query: fmt.Sprintf("ExecutionStatus != 'Running' AND StartTime >= '%s'", since.UTC().Format(time.RFC3339Nano)),
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range resp.GetExecutions() {
			out = append(out, [2]string{e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId()})
		}
		if next = resp.GetNextPageToken(); len(next) == 0 {
			return out
		}
	}
}
