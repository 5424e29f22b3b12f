// Package metrics holds Usher's Prometheus metrics: the business funnel, sends to providers,
// webhooks, and the Temporal SDK's own metrics, all on one registry per process. Labels
// take values from small fixed sets (event names, channels, status codes), never IDs or
// addresses. Every method is safe on a nil *Metrics, which records nothing.
package metrics

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/uber-go/tally/v4"
	tallyprom "github.com/uber-go/tally/v4/prometheus"
	"go.temporal.io/sdk/client"
	sdktally "go.temporal.io/sdk/contrib/tally"
)

// Funnel events, pre-created so that rates and ratios exist before the first one happens.
var (
	invitationEvents  = []string{"created", "sent", "delivered", "accepted", "expired", "revoked", "failed", "renewed", "resent", "reminded"}
	joinRequestEvents = []string{"created", "confirmed", "approved", "rejected", "expired", "cancelled"}
)

// Metrics is one process's metrics.
type Metrics struct {
	Registry *prometheus.Registry

	invitationEvents  *prometheus.CounterVec
	joinRequestEvents *prometheus.CounterVec
	acceptDelay       prometheus.Histogram
	sends             *prometheus.CounterVec
	sendDuration      *prometheus.HistogramVec
	mailgunWebhooks   *prometheus.CounterVec
	webhookDeliveries *prometheus.CounterVec
	webhookDuration   prometheus.Histogram
}

// New makes the metrics on a fresh registry, with the Go runtime and process collectors.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{
		Registry: reg,
		invitationEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usher_invitation_events_total",
			Help: "Invitation funnel: invitations created, sent, delivered, accepted, expired, revoked, failed, renewed, resent, reminded.",
		}, []string{"event"}),
		joinRequestEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usher_join_request_events_total",
			Help: "Join request funnel: requests created, confirmed, approved, rejected, expired, cancelled.",
		}, []string{"event"}),
		acceptDelay: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "usher_invitation_accept_delay_seconds",
			Help: "Time from an invitation's message being sent to the invitation being accepted.",
			// A minute to four weeks.
			Buckets: []float64{60, 300, 900, 3600, 4 * 3600, 12 * 3600, 86400, 2 * 86400, 4 * 86400, 7 * 86400, 14 * 86400, 28 * 86400},
		}),
		sends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usher_sends_total",
			Help: "Messages handed to providers, by channel, provider, result (sent, retry, refused) and provider HTTP status (none: no answer).",
		}, []string{"channel", "provider", "result", "code"}),
		sendDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "usher_send_duration_seconds",
			Help:    "Latency of calls to mail and SMS providers.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}, []string{"channel", "provider"}),
		mailgunWebhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usher_mailgun_webhooks_total",
			Help: "Mailgun event webhooks received, by event and result (accepted, forged, stale, replayed, duplicate, unknown).",
		}, []string{"event", "result"}),
		webhookDeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usher_webhook_deliveries_total",
			Help: "Attempts to deliver outgoing webhooks, by result (delivered, retry, failed).",
		}, []string{"result"}),
		webhookDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "usher_webhook_delivery_duration_seconds",
			Help:    "Latency of outgoing webhook requests.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}),
	}
	reg.MustRegister(m.invitationEvents, m.joinRequestEvents, m.acceptDelay, m.sends, m.sendDuration,
		m.mailgunWebhooks, m.webhookDeliveries, m.webhookDuration)
	for _, e := range invitationEvents {
		m.invitationEvents.WithLabelValues(e)
	}
	for _, e := range joinRequestEvents {
		m.joinRequestEvents.WithLabelValues(e)
	}
	for _, r := range []string{WebhookDelivered, WebhookRetry, WebhookFailed} {
		m.webhookDeliveries.WithLabelValues(r)
	}
	return m
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// ObserveEvent counts a domain event ("invitation.accepted", ...) in the funnel. data is the
// event's JSON; an accepted invitation's "sent_at" times the sent-to-accepted histogram.
func (m *Metrics) ObserveEvent(eventType string, occurredAt time.Time, data []byte) {
	if m == nil {
		return
	}
	subject, event, _ := strings.Cut(eventType, ".")
	switch subject {
	case "invitation":
		m.invitationEvents.WithLabelValues(event).Inc()
		if event == "accepted" {
			var d struct {
				SentAt *time.Time `json:"sent_at"`
			}
			if json.Unmarshal(data, &d) == nil && d.SentAt != nil && !occurredAt.Before(*d.SentAt) {
				m.acceptDelay.Observe(occurredAt.Sub(*d.SentAt).Seconds())
			}
		}
	case "join_request":
		m.joinRequestEvents.WithLabelValues(event).Inc()
	}
}

// Send results.
const (
	SendSent    = "sent"
	SendRetry   = "retry"
	SendRefused = "refused"
)

// ObserveSend counts one call to a provider. statusCode 0 means there was no answer.
func (m *Metrics) ObserveSend(channel, provider, result string, statusCode int, took time.Duration) {
	if m == nil {
		return
	}
	code := "none"
	if statusCode > 0 {
		code = strconv.Itoa(statusCode)
	}
	m.sends.WithLabelValues(channel, provider, result, code).Inc()
	m.sendDuration.WithLabelValues(channel, provider).Observe(took.Seconds())
}

// ObserveMailgunWebhook counts one Mailgun webhook call by event and result.
func (m *Metrics) ObserveMailgunWebhook(event, result string) {
	if m == nil {
		return
	}
	switch event {
	case "delivered", "failed", "complained", "opened", "clicked", "unsubscribed", "accepted":
	default:
		event = "other" // the event name comes from the request; keep the label set bounded
	}
	m.mailgunWebhooks.WithLabelValues(event, result).Inc()
}

// Results of outgoing webhook attempts: delivered, retried later, or given up after a day.
const (
	WebhookDelivered = "delivered"
	WebhookRetry     = "retry"
	WebhookFailed    = "failed"
)

// ObserveWebhookDelivery counts one outgoing webhook attempt.
func (m *Metrics) ObserveWebhookDelivery(result string, took time.Duration) {
	if m == nil {
		return
	}
	m.webhookDeliveries.WithLabelValues(result).Inc()
	m.webhookDuration.Observe(took.Seconds())
}

// CountWebhookGivenUp counts a delivery whose retries ran out.
func (m *Metrics) CountWebhookGivenUp() {
	if m == nil {
		return
	}
	m.webhookDeliveries.WithLabelValues(WebhookFailed).Inc()
}

// TemporalHandler reports the Temporal SDK's metrics (task latencies, schedule-to-start,
// failures, slots) on the same registry, named the Prometheus way: counters end in _total,
// timers are histograms in seconds. Close the returned closer when the client is closed.
func (m *Metrics) TemporalHandler() (client.MetricsHandler, io.Closer) {
	if m == nil {
		return client.MetricsNopHandler, io.NopCloser(nil)
	}
	reporter := tallyprom.NewReporter(tallyprom.Options{
		Registerer:       m.Registry,
		DefaultTimerType: tallyprom.HistogramTimerType,
		// 1 ms to about 65 s: task latencies above a minute are an outage, not a bucket.
		DefaultHistogramBuckets: prometheus.ExponentialBuckets(0.001, 2, 17),
	})
	scope, closer := tally.NewRootScope(tally.ScopeOptions{
		CachedReporter:  reporter,
		Separator:       tallyprom.DefaultSeparator,
		SanitizeOptions: &sdktally.PrometheusSanitizeOptions,
		// tally's gauges about itself only add series to scrape.
		OmitCardinalityMetrics: true,
	}, time.Second)
	return sdktally.NewMetricsHandler(sdktally.NewPrometheusNamingScope(scope)), closer
}
