package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

func TestFunnelCountsEventsAndTimesAccepts(t *testing.T) {
	m := New()
	sent := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	m.ObserveEvent("invitation.created", sent, []byte(`{}`))
	m.ObserveEvent("invitation.accepted", sent.Add(90*time.Minute), []byte(`{"sent_at":"2026-11-01T09:00:00Z"}`))
	m.ObserveEvent("invitation.accepted", sent, []byte(`{}`)) // no sent_at: counted, not timed
	m.ObserveEvent("join_request.approved", sent, nil)
	m.ObserveEvent("user.created", sent, nil) // not part of a funnel

	if got := testutil.ToFloat64(m.invitationEvents.WithLabelValues("accepted")); got != 2 {
		t.Errorf("accepted = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.invitationEvents.WithLabelValues("expired")); got != 0 {
		t.Errorf("expired = %v, want 0", got)
	}
	if got := testutil.ToFloat64(m.joinRequestEvents.WithLabelValues("approved")); got != 1 {
		t.Errorf("join approved = %v, want 1", got)
	}
	want := `
# HELP usher_invitation_accept_delay_seconds Time from an invitation's message being sent to the invitation being accepted.
# TYPE usher_invitation_accept_delay_seconds histogram
usher_invitation_accept_delay_seconds_bucket{le="60"} 0
usher_invitation_accept_delay_seconds_bucket{le="300"} 0
usher_invitation_accept_delay_seconds_bucket{le="900"} 0
usher_invitation_accept_delay_seconds_bucket{le="3600"} 0
usher_invitation_accept_delay_seconds_bucket{le="14400"} 1
usher_invitation_accept_delay_seconds_bucket{le="43200"} 1
usher_invitation_accept_delay_seconds_bucket{le="86400"} 1
usher_invitation_accept_delay_seconds_bucket{le="172800"} 1
usher_invitation_accept_delay_seconds_bucket{le="345600"} 1
usher_invitation_accept_delay_seconds_bucket{le="604800"} 1
usher_invitation_accept_delay_seconds_bucket{le="1.2096e+06"} 1
usher_invitation_accept_delay_seconds_bucket{le="2.4192e+06"} 1
usher_invitation_accept_delay_seconds_bucket{le="+Inf"} 1
usher_invitation_accept_delay_seconds_sum 5400
usher_invitation_accept_delay_seconds_count 1
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), "usher_invitation_accept_delay_seconds"); err != nil {
		t.Error(err)
	}
}

func TestLabelsStayBounded(t *testing.T) {
	m := New()
	m.ObserveSend("email", "mailgun", SendRefused, 400, time.Millisecond)
	m.ObserveSend("sms", "twilio", SendRetry, 0, time.Millisecond)
	m.ObserveMailgunWebhook("x-made-up-by-the-caller", "forged")
	if got := testutil.ToFloat64(m.sends.WithLabelValues("sms", "twilio", "retry", "none")); got != 1 {
		t.Errorf("a send with no answer is not counted under code none: %v", got)
	}
	if got := testutil.ToFloat64(m.mailgunWebhooks.WithLabelValues("other", "forged")); got != 1 {
		t.Errorf("an unknown webhook event is not folded into other: %v", got)
	}
}

func TestNilMetricsRecordNothing(t *testing.T) {
	var m *Metrics
	m.ObserveEvent("invitation.created", time.Now(), nil)
	m.ObserveSend("email", "mailgun", SendSent, 200, time.Second)
	m.ObserveMailgunWebhook("delivered", "accepted")
	m.ObserveWebhookDelivery("delivered", time.Second)
	if h, closer := m.TemporalHandler(); h == nil || closer.Close() != nil {
		t.Error("a nil Metrics has no usable Temporal handler")
	}
}

// The SDK's metrics arrive on the same registry, named the Prometheus way, and the whole
// registry passes the linter promtool uses.
func TestTemporalMetricsShareTheRegistryAndLint(t *testing.T) {
	m := New()
	handler, closer := m.TemporalHandler()
	scoped := handler.WithTags(map[string]string{"task_queue": "usher-delivery"})
	scoped.Counter("temporal_activity_execution_failed").Inc(1)
	scoped.Timer("temporal_activity_schedule_to_start_latency").Record(20 * time.Millisecond)
	if err := closer.Close(); err != nil { // reports what is buffered
		t.Fatal(err)
	}
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range families {
		names[f.GetName()] = true
	}
	for _, want := range []string{"temporal_activity_execution_failed_total", "temporal_activity_schedule_to_start_latency_seconds", "usher_invitation_events_total", "go_goroutines"} {
		if !names[want] {
			t.Errorf("the registry lacks %s", want)
		}
	}
	problems, err := promlint.NewWithMetricFamilies(families).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}
