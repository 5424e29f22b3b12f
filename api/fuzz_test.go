package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/usherhq/usher/activities"
	"github.com/usherhq/usher/internal/devtemporal"
	"github.com/usherhq/usher/internal/mail"
	"github.com/usherhq/usher/internal/mailgunsrv"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/testdb"
	"github.com/usherhq/usher/internal/webhooks"
	"github.com/usherhq/usher/worker"
	"github.com/usherhq/usher/workflows"
)

// Fuzz targets for every JSON request body and for the CSV import, run against the real
// handlers with real parts: a fresh MariaDB database, an in-process Temporal server and a
// worker that sends through a local Mailgun-speaking server. The property: whatever the
// body, the answer is below 500, nothing panics, and an error is the one JSON error shape.
//
// `go test ./api` replays the seeds and the corpus in testdata/fuzz; `make faults` fuzzes
// each target for FUZZTIME, e.g. go test ./api -run '^$' -fuzz '^FuzzJSONBodies$' -fuzztime 30s.

// fuzzEndpoints are the requests that take a JSON body. $ORG, $MEMBER, $INVITATION,
// $JOIN_REQUEST, $INVITE_TOKEN, $CONFIRM_TOKEN and $DECIDE_TOKEN, in paths and in bodies,
// stand for things the fixture made, so inputs that pass validation reach real ones.
var fuzzEndpoints = []struct {
	method, path string
	// valid is a body the endpoint takes.
	valid string
}{
	{"POST", "/v1/public/invitations/lookup", `{"token":"$INVITE_TOKEN"}`},
	{"POST", "/v1/public/invitations/accept", `{"token":"$INVITE_TOKEN","name":"Fuzz Accepter","password":"correct horse battery"}`},
	{"POST", "/v1/public/password", `{"token":"$INVITE_TOKEN","password":"correct horse battery"}`},
	{"POST", "/v1/public/members/search", `{"email":"$EMAIL_OF_MEMBER"}`},
	{"POST", "/v1/public/join-requests", `{"member_id":"$MEMBER","name":"Vera","email":"vera@example.com","message":"hi","locale":"de"}`},
	{"POST", "/v1/public/join-requests/confirm", `{"token":"$CONFIRM_TOKEN"}`},
	{"POST", "/v1/public/join-requests/decide", `{"token":"$DECIDE_TOKEN","decision":"approve","role":"member"}`},
	{"POST", "/v1/webhooks/mailgun", `{"signature":{"timestamp":"1","token":"t","signature":"00"},"event-data":{"event":"delivered","id":"x"}}`},
	{"POST", "/v1/organizations", `{"name":"Fuzz Org","login_url":"https://example.com/login","logo_url":"https://example.com/logo.png"}`},
	{"PATCH", "/v1/users/$MEMBER", `{"name":"Mo","locale":"fr","public_profile":{"display_name":"Mo","organization_id":"$ORG","city":"Oslo","bio":"b"}}`},
	{"POST", "/v1/users", `{"organization_id":"$ORG","email":"p@example.com","name":"P","role":"member","send_invitation":true,"channel":"email","expires_in":"48h"}`},
	{"POST", "/v1/users/invite", `{"organization_id":"$ORG","filter":{"status":"not_invited"},"channel":"email","expires_in":"24h"}`},
	{"POST", "/v1/invitations/bulk", `{"invitations":[{"organization_id":"$ORG","email":"b@example.com","name":"B","role":"member"}]}`},
	{"POST", "/v1/invitations", `{"email":"i@example.com","name":"I","organization_id":"$ORG","role":"admin","inviter_id":"$MEMBER","expires_in":"72h","locale":"es","redirect_url":"https://example.com/","metadata":{"k":"v"},"send":false}`},
	{"POST", "/v1/invitations/$INVITATION/send", `{}`},
	{"POST", "/v1/invitations/$INVITATION/resend", `{}`},
	{"POST", "/v1/invitations/$INVITATION/renew", `{"expires_in":"96h"}`},
	{"POST", "/v1/invitations/$INVITATION/revoke", `{}`},
	{"POST", "/v1/join-requests/$JOIN_REQUEST/approve", `{"role":"member"}`},
	{"POST", "/v1/join-requests/$JOIN_REQUEST/reject", `{}`},
	{"POST", "/v1/join-requests/$JOIN_REQUEST/cancel", `{}`},
	{"POST", "/v1/webhook-endpoints", `{"url":"https://example.com/hook","events":["invitation.accepted"],"description":"d"}`},
}

// nastyBodies are tried on every endpoint.
var nastyBodies = []string{
	``, `null`, `[]`, `{}`, `"x"`, `0`, `{"a":1}{"b":2}`, `{"token":null}`, `{"token":1e999}`,
	`{"email":"\u0000","name":"\u202e","token":"\ud800"}`, "{\"name\":\"\xff\xfe\"}",
	strings.Repeat(`[`, 20000), `{"metadata":` + strings.Repeat(`{"a":`, 5000) + `1` + strings.Repeat(`}`, 5000) + `}`,
	`{"expires_in":"-1h","send":"yes","role":["admin"],"locale":"x-` + strings.Repeat("a", 300) + `"}`,
	`{"organization_id":"' OR 1=1 --","email":"a@b.c'; DROP TABLE users; --","name":"Robert'); DROP TABLE students;--"}`,
	`{"invitations":[` + strings.Repeat(`{},`, 100) + `{}]}`, `{"user_ids":["$ORG","` + strings.Repeat("9", 100) + `"]}`,
}

func FuzzJSONBodies(f *testing.F) {
	for i, e := range fuzzEndpoints {
		f.Add(uint8(i), []byte(e.valid))
	}
	// Each nasty body on creating an invitation (the richest body) and on one other
	// endpoint; the fuzzer mutates the endpoint too.
	for k, body := range nastyBodies {
		f.Add(uint8(13), []byte(body))
		f.Add(uint8(k*7%len(fuzzEndpoints)), []byte(body))
	}
	f.Fuzz(func(t *testing.T, endpoint uint8, body []byte) {
		fx := fuzzFixture(t)
		e := fuzzEndpoints[int(endpoint)%len(fuzzEndpoints)]
		fx.check(t, e.method, fx.expand(e.path), "application/json", fx.expandBytes(body))
	})
}

func FuzzImportCSV(f *testing.F) {
	for _, seed := range []string{
		"email,name,phone,locale,role\nann@example.com,Ann,,en,member\nbob@example.com,Bob,+14155550100,de,admin\n",
		"\ufeffEmail;Name\r\nc@example.com;C\r\n",
		"email\n\"d@example.com\"\n\"unterminated\n",
		"name,email,role\nEve,e@example.com,owner\n,,\n",
		"email,name\n=HYPERLINK(\"http://x\"),\"=1+1\"\n" + `"a""b"@example.com,"x""y"` + "\n",
		"email,name\nf@example.com,\x00\n\xff\xfe@example.com,\u202eevil\n",
		"email,email\ng@example.com,h@example.com\n",
		"", "\n\n\n", "email\n" + strings.Repeat("x", 70000) + "@example.com\n",
		"email,name,role\n" + strings.Repeat("same@example.com,Same,member\n", 50),
		"email,name\n' OR 1=1 --@example.com,'); DROP TABLE users; --\n",
	} {
		f.Add([]byte(seed), false)
		f.Add([]byte(seed), true)
	}
	f.Fuzz(func(t *testing.T, csv []byte, send bool) {
		fx := fuzzFixture(t)
		fx.check(t, "POST", fmt.Sprintf("/v1/users/import?organization_id=%s&send_invitation=%t", fx.vars["$ORG"], send), "text/csv", csv)
	})
}

// fuzzStack is the fixture the targets share, one per process (fuzzing runs one process per
// worker).
type fuzzStack struct {
	handler http.Handler
	apiKey  string
	vars    map[string]string
	stop    func()
}

var fuzzing struct {
	once sync.Once
	fx   *fuzzStack
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	stopFuzzFixture()
	os.Exit(code)
}

var stopFuzzOnce sync.Once

func stopFuzzFixture() {
	stopFuzzOnce.Do(func() {
		if fuzzing.fx != nil {
			fuzzing.fx.stop()
		}
	})
}

// stopOnSignal drops the fixture's database when the fuzzing coordinator interrupts a
// worker process, which does not return through TestMain.
func stopOnSignal() {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-signals
		stopFuzzFixture()
		os.Exit(1)
	}()
}

func fuzzFixture(t *testing.T) *fuzzStack {
	fuzzing.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		fuzzing.fx, fuzzing.err = startFuzzStack(ctx)
		stopOnSignal()
	})
	if fuzzing.err != nil {
		t.Fatal("starting the fuzz fixture: ", fuzzing.err)
	}
	return fuzzing.fx
}

func (fx *fuzzStack) expand(s string) string {
	for k, v := range fx.vars {
		s = strings.ReplaceAll(s, k, v)
	}
	return s
}

func (fx *fuzzStack) expandBytes(b []byte) []byte {
	if !bytes.Contains(b, []byte("$")) {
		return b
	}
	return []byte(fx.expand(string(b)))
}

// check sends one request and asserts the property.
func (fx *fuzzStack) check(t *testing.T, method, path, contentType string, body []byte) {
	t.Helper()
	res := fx.do(method, path, contentType, body)
	raw := res.Body.Bytes()
	if res.Code >= 500 {
		t.Fatalf("%s %s answered %d: %.500s\nbody: %.300q", method, path, res.Code, raw, body)
	}
	if res.Code >= 400 {
		var e struct {
			Error *struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(raw, &e); err != nil || e.Error == nil || e.Error.Code == "" || e.Error.Message == "" {
			t.Fatalf("%s %s answered %d without the error shape: %.500s", method, path, res.Code, raw)
		}
	} else if !json.Valid(raw) {
		t.Fatalf("%s %s answered %d with a body that is not JSON: %.500s", method, path, res.Code, raw)
	}
}

func (fx *fuzzStack) do(method, path, contentType string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+fx.apiKey)
	req.Header.Set("Content-Type", contentType)
	res := httptest.NewRecorder()
	fx.handler.ServeHTTP(res, req)
	return res
}

var fuzzLink = regexp.MustCompile(`/(invite|join/confirm|join-requests)/([A-Za-z0-9_-]{43})`)

func startFuzzStack(ctx context.Context) (fx *fuzzStack, err error) {
	var stops []func()
	stop := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	quiet := slog.New(slog.DiscardHandler)
	db, err := testdb.Create(ctx)
	if err != nil {
		return nil, err
	}
	stops = append(stops, db.Drop)
	st := store.New(db.DB, nil)
	temporal, err := devtemporal.Start(devtemporal.Options{SearchAttributes: workflows.SearchAttributeTypes()})
	if err != nil {
		return nil, err
	}
	stops = append(stops, temporal.Stop)
	tc, err := client.DialContext(ctx, client.Options{HostPort: temporal.FrontendAddress(), Namespace: temporal.Namespace(),
		Logger: sdklog.NewStructuredLogger(quiet)})
	if err != nil {
		return nil, err
	}
	stops = append(stops, tc.Close)
	mg := mailgunsrv.New(mailgunsrv.Options{Domain: "mg.fuzz.test", APIKey: "key-fuzz", MaxMessages: 2000})
	mgHTTP := httptest.NewServer(mg)
	stops = append(stops, mgHTTP.Close)
	sealer, err := webhooks.NewSealer([]byte("fuzz hosted pages secret 32 byte"))
	if err != nil {
		return nil, err
	}
	acts := &activities.Activities{Store: st, Temporal: tc, PublicURL: "https://usher.fuzz", WebhookSealer: sealer,
		Mail: mail.NewMailgun(mail.MailgunConfig{Domain: "mg.fuzz.test", APIKey: "key-fuzz", APIBase: mgHTTP.URL + "/v3", From: "Usher <usher@fuzz.test>"})}
	w := worker.New(tc, acts, worker.Options{Logger: quiet})
	if err := w.Start(); err != nil {
		return nil, err
	}
	stops = append(stops, w.Stop)

	server := &Server{Store: st, Temporal: tc, Logger: quiet, PageSecret: []byte("fuzz hosted pages secret 32 byte"),
		Join: JoinSettings{SearchesPerMinute: 1 << 30}, TokenGuessesPerMinute: 1 << 30,
		MailgunWebhookSigningKey: "fuzz-webhook-key", WebhookSealer: sealer}
	fx = &fuzzStack{handler: server.Handler(), vars: map[string]string{}, stop: stop}
	if _, fx.apiKey, err = st.CreateAPIKey(ctx, "fuzz"); err != nil {
		return nil, err
	}

	// The things the bodies refer to: an organization, a member with a public profile, a
	// pending invitation and a join request, and the links their e-mails carry.
	want := func(status int, method, path, body string) (map[string]any, error) {
		res := fx.do(method, fx.expand(path), "application/json", []byte(fx.expand(body)))
		var out map[string]any
		_ = json.Unmarshal(res.Body.Bytes(), &out)
		if res.Code != status {
			return nil, fmt.Errorf("%s %s: %d %s", method, path, res.Code, res.Body.Bytes())
		}
		return out, nil
	}
	org, err := want(http.StatusCreated, "POST", "/v1/organizations", `{"name":"Fuzz Org"}`)
	if err != nil {
		return nil, err
	}
	fx.vars["$ORG"] = org["id"].(string)
	fx.vars["$EMAIL_OF_MEMBER"] = "member@fuzz.test"
	member, err := st.CreateUser(ctx, fx.vars["$EMAIL_OF_MEMBER"], "Fuzz Member", []byte("$2a$10$not.a.real.hash"))
	if err != nil {
		return nil, err
	}
	if err := st.AddMembership(ctx, member.ID, fx.vars["$ORG"], "admin"); err != nil {
		return nil, err
	}
	fx.vars["$MEMBER"] = member.ID
	if _, err := want(http.StatusOK, "PATCH", "/v1/users/$MEMBER", `{"public_profile":{"display_name":"Fuzz M.","organization_id":"$ORG"}}`); err != nil {
		return nil, err
	}
	inv, err := want(http.StatusCreated, "POST", "/v1/invitations", `{"email":"invitee@fuzz.test","name":"Invitee","organization_id":"$ORG"}`)
	if err != nil {
		return nil, err
	}
	fx.vars["$INVITATION"] = inv["id"].(string)
	jr, err := want(http.StatusAccepted, "POST", "/v1/public/join-requests", `{"member_id":"$MEMBER","name":"Visitor","email":"visitor@fuzz.test"}`)
	if err != nil {
		return nil, err
	}
	fx.vars["$JOIN_REQUEST"] = jr["id"].(string)
	link := func(to, page string) (string, error) {
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			for _, m := range mg.MessagesTo(to) {
				if match := fuzzLink.FindStringSubmatch(m.Text); match != nil && match[1] == page {
					return match[2], nil
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		return "", fmt.Errorf("no %s link e-mailed to %s", page, to)
	}
	if fx.vars["$INVITE_TOKEN"], err = link("invitee@fuzz.test", "invite"); err != nil {
		return nil, err
	}
	if fx.vars["$CONFIRM_TOKEN"], err = link("visitor@fuzz.test", "join/confirm"); err != nil {
		return nil, err
	}
	if _, err := want(http.StatusOK, "POST", "/v1/public/join-requests/confirm", `{"token":"$CONFIRM_TOKEN"}`); err != nil {
		return nil, err
	}
	if fx.vars["$DECIDE_TOKEN"], err = link(fx.vars["$EMAIL_OF_MEMBER"], "join-requests"); err != nil {
		return nil, err
	}
	return fx, nil
}
