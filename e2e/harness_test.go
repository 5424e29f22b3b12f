// Package e2e runs Usher's journeys through the HTTP API against real parts: an
// in-process Temporal server, MariaDB over TCP, and the real mailgun-go client talking to a
// local server that speaks Mailgun's API.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/usherhq/usher/activities"
	"github.com/usherhq/usher/api"
	"github.com/usherhq/usher/internal/devtemporal"
	"github.com/usherhq/usher/internal/mail"
	"github.com/usherhq/usher/internal/mailgunsrv"
	"github.com/usherhq/usher/internal/metrics"
	"github.com/usherhq/usher/internal/sms"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/testdb"
	"github.com/usherhq/usher/internal/twiliosrv"
	"github.com/usherhq/usher/internal/webhooks"
	"github.com/usherhq/usher/worker"
	"github.com/usherhq/usher/workflows"
)

const (
	publicURL     = "https://usher.test"
	mailgunDomain = "mg.usher.test"
	mailgunKey    = "key-test"
	// mailgunWebhookKey signs the test Mailgun's event webhooks.
	mailgunWebhookKey = "e2e-mailgun-webhook-signing-key"
	twilioSID         = "ACtest"
	twilioToken       = "token-test"
)

// stack is one running Usher with its real dependencies, shared by the tests of a run.
type stack struct {
	temporal *devtemporal.Server
	client   client.Client
	db       *testdb.Database
	store    *store.Store
	mailgun  *mailgunsrv.Server
	phone    *twiliosrv.Server
	api      *httptest.Server
	apiKey   string
	acts     *activities.Activities
	oapi     *openAPIValidator
	// metrics is the registry of the worker and the API, as in `usher dev`.
	metrics *metrics.Metrics

	workerMu sync.Mutex
	worker   *worker.Workers
}

var env *stack

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := startStack(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: starting the stack:", err)
		return 1
	}
	defer s.stop()
	env = s
	return m.Run()
}

func startStack(ctx context.Context) (*stack, error) {
	s := &stack{}
	var err error
	if s.temporal, err = devtemporal.Start(devtemporal.Options{SearchAttributes: workflows.SearchAttributeTypes()}); err != nil {
		return nil, err
	}
	if s.db, err = testdb.Create(ctx); err != nil {
		s.temporal.Stop()
		return nil, err
	}
	s.store = store.New(s.db.DB, nil)
	s.metrics = metrics.New()
	s.store.SetEventObserver(func(e store.Event) { s.metrics.ObserveEvent(e.Type, e.OccurredAt, e.Data) })
	temporalMetrics, _ := s.metrics.TemporalHandler()
	quiet := quietLogger() // errors to stderr; everything while a test captures (logcapture_test.go)
	if s.client, err = client.DialContext(ctx, client.Options{
		HostPort: s.temporal.FrontendAddress(), Namespace: s.temporal.Namespace(), Logger: sdklog.NewStructuredLogger(quiet),
		MetricsHandler: temporalMetrics,
	}); err != nil {
		return nil, err
	}

	// Mail to bounce…@ bounces; everything else is reported delivered, by webhook to the
	// API (set below, once it listens).
	s.mailgun = mailgunsrv.New(mailgunsrv.Options{Domain: mailgunDomain, APIKey: mailgunKey,
		Bounce: mailgunsrv.BounceLocalPartPrefix("bounce"), WebhookDelay: 50 * time.Millisecond})
	mailgunHTTP := httptest.NewServer(s.mailgun)
	s.acts = &activities.Activities{
		Store:     s.store,
		Mail:      mail.NewMailgun(mail.MailgunConfig{Domain: mailgunDomain, APIKey: mailgunKey, APIBase: mailgunHTTP.URL + "/v3", From: "Usher <usher@usher.test>"}),
		PublicURL: publicURL,
		Metrics:   s.metrics,
	}
	s.acts.Temporal = s.client
	// No reminders: the suite's invitations are short-lived, and a reminder replaces the link.
	s.acts.Invitations = workflows.InvitationSettings{NotifyInviterOnExpiry: true}
	s.phone = twiliosrv.New(twiliosrv.Options{AccountSID: twilioSID, AuthToken: twilioToken, CheckNumbers: true})
	phoneHTTP := httptest.NewServer(s.phone)
	s.acts.SMS = sms.NewTwilio(sms.TwilioConfig{AccountSID: twilioSID, AuthToken: twilioToken, From: "+15005550006", APIBase: phoneHTTP.URL})
	if err := s.startWorker(); err != nil {
		return nil, err
	}

	server := &api.Server{Store: s.store, Temporal: s.client, Logger: quiet, SMSEnabled: true, Metrics: s.metrics,
		// The tests all come from 127.0.0.1; TestMemberSearchIsRateLimitedPerAddress checks the
		// limit on a server of its own.
		Join: api.JoinSettings{JoinSettings: workflows.JoinSettings{TellVisitorOnReject: true}, SearchesPerMinute: 100000},
		// Likewise for failed token lookups (e2e/abuse_test.go tests the limit).
		TokenGuessesPerMinute: 100000}
	// Hosted pages (pages_test.go, browser_test.go): a fixed key, as several instances
	// would share; Validate reports a broken page template before the tests start.
	server.PageSecret = []byte("e2e hosted pages secret, 32 byte")
	server.MailgunWebhookSigningKey = mailgunWebhookKey
	// Webhook secrets are sealed by the API and opened by the worker with one key.
	if server.WebhookSealer, err = webhooks.NewSealer(server.PageSecret); err != nil {
		return nil, err
	}
	s.acts.WebhookSealer = server.WebhookSealer
	if err := server.Validate(); err != nil {
		return nil, err
	}
	s.api = httptest.NewServer(server.Handler())
	s.mailgun.SetWebhook(s.api.URL+"/v1/webhooks/mailgun", mailgunWebhookKey)
	if _, s.apiKey, err = s.store.CreateAPIKey(ctx, "e2e"); err != nil {
		return nil, err
	}
	if s.oapi, err = newOpenAPIValidator(api.OpenAPIDocument); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *stack) startWorker() error {
	s.workerMu.Lock()
	defer s.workerMu.Unlock()
	// Webhook retries start at 200 ms so that e2e/webhooks_test.go sees them quickly.
	s.worker = worker.New(s.client, s.acts, worker.Options{WebhookRetryInitial: 200 * time.Millisecond, Logger: quietLogger()})
	return s.worker.Start()
}

func (s *stack) stopWorker() {
	s.workerMu.Lock()
	defer s.workerMu.Unlock()
	if s.worker != nil {
		s.worker.Stop()
		s.worker = nil
	}
}

func (s *stack) stop() {
	s.stopWorker()
	if s.api != nil {
		s.api.Close()
	}
	if s.client != nil {
		s.client.Close()
	}
	if s.db != nil {
		s.db.Drop()
	}
	s.temporal.Stop()
}

// response is an API answer, already checked against the OpenAPI document.
type response struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    []byte
}

func (r response) str(path ...string) string {
	v := r.get(path...)
	if s, ok := v.(string); ok {
		return s
	}
	return ""
}

func (r response) get(path ...string) any {
	var cur any = r.Body
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

func (r response) code() string { return r.str("error", "code") }

type requestOption func(*http.Request)

func withHeader(k, v string) requestOption { return func(r *http.Request) { r.Header.Set(k, v) } }

var withoutKey requestOption = func(r *http.Request) { r.Header.Del("Authorization") }

// call sends a request to the API with the test API key. body may be a value to encode,
// a string sent as it is, or nil.
func call(t testing.TB, method, path string, body any, opts ...requestOption) response {
	t.Helper()
	var reader io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		reader = strings.NewReader(b)
	case []byte:
		reader = bytes.NewReader(b)
	default:
		encoded, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		reader = bytes.NewReader(encoded)
	}
	req, err := http.NewRequest(method, env.api.URL+path, reader)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+env.apiKey)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, o := range opts {
		o(req)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := response{Status: res.StatusCode, Header: res.Header, Raw: raw}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &out.Body); err != nil {
			t.Fatalf("%s %s: response is not a JSON object: %s", method, path, raw)
		}
	}
	if res.StatusCode >= 500 && res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("%s %s answered %d: %s", method, path, res.StatusCode, raw)
	}
	if err := env.oapi.validate(req, res.StatusCode, res.Header, raw); err != nil {
		t.Errorf("%s %s: response does not match openapi.yaml: %v\n%s", method, path, err, raw)
	}
	return out
}

func expect(t testing.TB, r response, status int, code string) {
	t.Helper()
	if r.Status != status || (code != "" && r.code() != code) {
		t.Fatalf("got %d %s, want %d %s: %s", r.Status, r.code(), status, code, r.Raw)
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var linkPattern = regexp.MustCompile(regexp.QuoteMeta(publicURL) + `/(invite|password|join/confirm|join-requests)/([A-Za-z0-9_-]{43})`)

// waitForMail waits until count messages with tag have reached to, and returns them.
func waitForMail(t testing.TB, to, tag string, count int) []mailgunsrv.Message {
	t.Helper()
	var found []mailgunsrv.Message
	eventually(t, 60*time.Second, fmt.Sprintf("%d %q e-mail(s) to %s", count, tag, to), func() bool {
		found = mailTo(to, tag)
		return len(found) >= count
	})
	return found
}

func mailTo(to, tag string) []mailgunsrv.Message {
	var out []mailgunsrv.Message
	for _, m := range env.mailgun.MessagesTo(to) {
		for _, tg := range m.Tags {
			if tg == tag {
				out = append(out, m)
			}
		}
	}
	return out
}

// tokenIn extracts the token of the page link in a message, checking text and HTML agree.
func tokenIn(t testing.TB, m mailgunsrv.Message, page string) string {
	t.Helper()
	match := linkPattern.FindStringSubmatch(m.Text)
	if match == nil || match[1] != page {
		t.Fatalf("no %s link in the e-mail text: %q", page, m.Text)
	}
	if !strings.Contains(m.HTML, match[0]) {
		t.Fatalf("the HTML part lacks the link of the text part")
	}
	return match[2]
}

var counter struct {
	sync.Mutex
	n int
}

// uniqueEmail returns an address no other test uses.
func uniqueEmail(t testing.TB, prefix string) string {
	counter.Lock()
	defer counter.Unlock()
	counter.n++
	return fmt.Sprintf("%s-%d-%d@example.com", prefix, time.Now().UnixNano()%1_000_000, counter.n)
}

func createOrganization(t testing.TB, name string, extra map[string]any) string {
	t.Helper()
	body := map[string]any{"name": name}
	for k, v := range extra {
		body[k] = v
	}
	r := call(t, "POST", "/v1/organizations", body)
	expect(t, r, http.StatusCreated, "")
	return r.str("id")
}

// createMember makes an active user (with a password) who belongs to org.
func createMember(t testing.TB, org, name string) (id, email string) {
	t.Helper()
	email = uniqueEmail(t, "member")
	user, err := env.store.CreateUser(context.Background(), email, name, []byte("$2a$10$not.a.real.hash.but.present"))
	if err != nil {
		t.Fatal(err)
	}
	if err := env.store.AddMembership(context.Background(), user.ID, org, "admin"); err != nil {
		t.Fatal(err)
	}
	return user.ID, email
}

func invite(t testing.TB, body map[string]any) response {
	t.Helper()
	r := call(t, "POST", "/v1/invitations", body)
	expect(t, r, http.StatusCreated, "")
	return r
}

func waitForStatus(t testing.TB, id, status string) response {
	t.Helper()
	var r response
	eventually(t, 60*time.Second, "invitation "+id+" to be "+status, func() bool {
		r = call(t, "GET", "/v1/invitations/"+id, nil)
		return r.str("status") == status
	})
	return r
}

func countRows(t testing.TB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := env.db.DB.Get(&n, query, args...); err != nil {
		t.Fatal(err)
	}
	return n
}

func contains(haystack, needle string) bool { return strings.Contains(haystack, needle) }

func stringsReader(s string) io.Reader { return strings.NewReader(s) }

func jsonBody(v any) ([]byte, error) { return json.Marshal(v) }
