package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"

	"github.com/usherhq/usher/deploy"
	"github.com/usherhq/usher/internal/mailgunsrv"
	"github.com/usherhq/usher/workflows"
)

// scrape reads the API's /metrics, which in this stack (as in `usher dev`) also carries the
// worker's and the Temporal SDK's metrics.
func scrape(t *testing.T) (map[string]*dto.MetricFamily, []byte) {
	t.Helper()
	resp, err := http.Get(env.api.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return families, raw
}

// sample sums the values of a family's series whose labels include want.
func sample(families map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	var sum float64
	for _, m := range families[name].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		matches := true
		for k, v := range want {
			matches = matches && labels[k] == v
		}
		if !matches {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		}
	}
	return sum
}

func TestFunnelMetricsMoveWithEveryOutcome(t *testing.T) {
	before, _ := scrape(t)
	org := createOrganization(t, "Metrics Org", nil)
	inviterID, _ := createMember(t, org, "Mia Metrics")

	// Accepted (created, sent, delivered, accepted).
	acceptedEmail := uniqueEmail(t, "metrics-accepted")
	accepted := invite(t, map[string]any{"email": acceptedEmail, "organization_id": org, "inviter_id": inviterID}).str("id")
	token := tokenIn(t, waitForMail(t, acceptedEmail, "invitation", 1)[0], "invite")
	expect(t, call(t, "POST", "/v1/public/invitations/accept", map[string]any{"token": token}, withoutKey), http.StatusOK, "")
	waitForStatus(t, accepted, "accepted")

	// Expired, revoked, failed.
	expiring := invite(t, map[string]any{"email": uniqueEmail(t, "metrics-expired"), "organization_id": org, "expires_in": "2s"}).str("id")
	revokedEmail := uniqueEmail(t, "metrics-revoked")
	revoked := invite(t, map[string]any{"email": revokedEmail, "organization_id": org}).str("id")
	waitForMail(t, revokedEmail, "invitation", 1)
	expect(t, call(t, "POST", "/v1/invitations/"+revoked+"/revoke", nil), http.StatusOK, "")
	refusedEmail := uniqueEmail(t, "metrics-refused")
	faultFor(t, refusedEmail, func(int) *mailgunsrv.Fault {
		return &mailgunsrv.Fault{Status: http.StatusBadRequest, Body: `{"message":"'to' parameter is not a valid address"}`}
	})
	failed := invite(t, map[string]any{"email": refusedEmail, "organization_id": org}).str("id")
	waitForStatus(t, expiring, "expired")
	waitForStatus(t, failed, "failed")

	// A join request, created.
	memberID, _ := createMember(t, org, "Jo Joinable")
	publishProfile(t, memberID, org, "Jo J.")
	joined := call(t, "POST", "/v1/public/join-requests", map[string]any{"member_id": memberID, "name": "Vic Visitor", "email": uniqueEmail(t, "metrics-visitor")}, withoutKey)
	expect(t, joined, http.StatusAccepted, "")

	var after map[string]*dto.MetricFamily
	var raw []byte
	funnel := []string{"created", "sent", "delivered", "accepted", "expired", "revoked", "failed"}
	var still []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		after, raw = scrape(t)
		still = slices.DeleteFunc(slices.Clone(funnel), func(event string) bool {
			labels := map[string]string{"event": event}
			return sample(after, "usher_invitation_events_total", labels) > sample(before, "usher_invitation_events_total", labels)
		})
		if len(still) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(still) > 0 {
		t.Fatalf("usher_invitation_events_total did not move for %v", still)
	}
	moved := func(name string, labels map[string]string) {
		t.Helper()
		if sample(after, name, labels) <= sample(before, name, labels) {
			t.Errorf("%s%v did not move", name, labels)
		}
	}
	moved("usher_join_request_events_total", map[string]string{"event": "created"})
	moved("usher_invitation_accept_delay_seconds", nil)
	moved("usher_sends_total", map[string]string{"channel": "email", "provider": "mailgun", "result": "sent", "code": "200"})
	moved("usher_sends_total", map[string]string{"channel": "email", "provider": "mailgun", "result": "refused", "code": "400"})
	moved("usher_send_duration_seconds", map[string]string{"channel": "email", "provider": "mailgun"})
	moved("usher_http_requests_total", map[string]string{"route": "/v1/invitations", "method": "POST", "status": "201"})
	// The Temporal SDK's own metrics, on the same registry.
	moved("temporal_workflow_task_schedule_to_start_latency_seconds", map[string]string{"task_queue": workflows.TaskQueue})
	moved("temporal_workflow_task_execution_latency_seconds", map[string]string{"workflow_type": "InvitationWorkflow"})
	moved("temporal_activity_schedule_to_start_latency_seconds", map[string]string{"activity_type": workflows.ActivitySendInvitation})

	// Every metric the dashboard and the alerts query exists, but for the failure counters
	// the SDK creates at the first failure.
	createdOnFailure := []string{
		"temporal_activity_execution_failed_total", "temporal_workflow_task_execution_failed_total",
		"temporal_request_failure_total", "temporal_long_request_failure_total",
	}
	for _, name := range deploy.MetricNames() {
		if _, ok := after[name]; !ok && !slices.Contains(createdOnFailure, name) {
			t.Errorf("the dashboard or alerts use %s, which /metrics does not have", name)
		}
	}

	// Nothing personal or secret in any label.
	for _, secret := range []string{acceptedEmail, revokedEmail, refusedEmail, token, org, accepted} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("/metrics contains %q", secret)
		}
	}
	checkWithPromtool(t, raw)
}

// checkWithPromtool runs `promtool check metrics` on a scrape. .ci/run installs promtool
// (scripts/ensure-promtool.sh); elsewhere the check is skipped without it.
func checkWithPromtool(t *testing.T, raw []byte) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool is not installed (scripts/ensure-promtool.sh installs it)")
		}
		t.Log("promtool not found; skipping `promtool check metrics`")
		return
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = bytes.NewReader(raw)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

func TestSearchAttributesFindWorkflowsByStatus(t *testing.T) {
	org := createOrganization(t, "Searchable Org", nil)
	email := uniqueEmail(t, "searchable")
	id := invite(t, map[string]any{"email": email, "organization_id": org, "expires_in": "12h"}).str("id")
	workflowID := workflows.InvitationWorkflowID(id)
	waitForMail(t, email, "invitation", 1)

	find := func(query string) bool {
		resp, err := env.client.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: env.temporal.Namespace(), Query: query,
		})
		if err != nil {
			t.Fatalf("listing %q: %v", query, err)
		}
		for _, e := range resp.GetExecutions() {
			if e.GetExecution().GetWorkflowId() == workflowID {
				return true
			}
		}
		return false
	}
	scoped := fmt.Sprintf("UsherKind='invitation' AND UsherOrganization='%s'", org)
	eventually(t, 20*time.Second, "the invitation to be listed as pending", func() bool {
		return find(scoped + " AND UsherStatus='pending'")
	})
	// "Expiring within a day", as the README's query asks it.
	dayAhead := time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)
	if !find(fmt.Sprintf("%s AND ExecutionStatus='Running' AND UsherExpiresAt < '%s'", scoped, dayAhead)) {
		t.Error("an invitation expiring in 12 hours is not found by the expiring-within-a-day query")
	}

	expect(t, call(t, "POST", "/v1/invitations/"+id+"/revoke", nil), http.StatusOK, "")
	eventually(t, 20*time.Second, "the invitation to be listed as revoked", func() bool {
		return find(scoped+" AND UsherStatus='revoked'") && !find(scoped+" AND UsherStatus='pending'")
	})

	// The UI shows who and what by ID, and nothing personal.
	desc, err := env.client.DescribeWorkflowExecution(context.Background(), workflowID, "")
	if err != nil {
		t.Fatal(err)
	}
	var memoOrg string
	if f := desc.GetWorkflowExecutionInfo().GetMemo().GetFields()["organization_id"]; f == nil || converter.GetDefaultDataConverter().FromPayload(f, &memoOrg) != nil || memoOrg != org {
		t.Errorf("memo organization_id = %q, want %q", memoOrg, org)
	}
	var summary string
	_ = converter.GetDefaultDataConverter().FromPayload(desc.GetExecutionConfig().GetUserMetadata().GetSummary(), &summary)
	if !strings.Contains(summary, org) {
		t.Errorf("summary %q does not name the organization", summary)
	}
	if strings.Contains(desc.String(), email) {
		t.Errorf("the workflow's description contains the invitee's address")
	}
}
