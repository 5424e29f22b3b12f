package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/domain"
	"github.com/usherhq/usher/internal/mailgunsrv"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/worker"
	"github.com/usherhq/usher/workflows"
)

// faultFor makes the Mailgun test server misbehave for messages to one address only, so
// tests running side by side are not disturbed.
func faultFor(t *testing.T, to string, fault func(attempt int) *mailgunsrv.Fault) {
	t.Helper()
	var attempts atomic.Int32
	env.mailgun.SetFault(func(m mailgunsrv.Message) *mailgunsrv.Fault {
		for _, addr := range m.To {
			if addr == to {
				return fault(int(attempts.Add(1)))
			}
		}
		return nil
	})
	t.Cleanup(func() { env.mailgun.SetFault(nil) })
}

func TestPermanentMailgunRefusalFailsTheInvitation(t *testing.T) {
	org := createOrganization(t, "Bouncing Org", nil)
	email := uniqueEmail(t, "refused")
	faultFor(t, email, func(int) *mailgunsrv.Fault {
		return &mailgunsrv.Fault{Status: http.StatusBadRequest, Body: `{"message":"'to' parameter is not a valid address. please check documentation"}`}
	})
	id := invite(t, map[string]any{"email": email, "organization_id": org}).str("id")
	failed := waitForStatus(t, id, "failed")
	if failed.str("delivery", "status") != "failed" || !strings.Contains(failed.str("failure_reason"), "400") {
		t.Fatalf("failed invitation: %s", failed.Raw)
	}
	if got := failed.get("delivery", "attempts"); got != float64(1) {
		t.Fatalf("a permanent refusal was tried %v times", got)
	}
	expect(t, call(t, "POST", "/v1/invitations/"+id+"/resend", nil), http.StatusConflict, "invalid_state")
	checkHistory(t, id, "delivery-refused", email)
}

func TestTransientMailgunFailuresAreRetried(t *testing.T) {
	org := createOrganization(t, "Flaky Org", nil)
	email := uniqueEmail(t, "flaky")
	faultFor(t, email, func(attempt int) *mailgunsrv.Fault {
		switch attempt {
		case 1:
			return &mailgunsrv.Fault{Status: http.StatusServiceUnavailable}
		case 2:
			h := http.Header{}
			h.Set("Retry-After", "1")
			return &mailgunsrv.Fault{Status: http.StatusTooManyRequests, Header: h}
		}
		return nil
	})
	id := invite(t, map[string]any{"email": email, "organization_id": org}).str("id")
	waitForMail(t, email, "invitation", 1)
	sent := waitForDelivery(t, id, "sent")
	if sent.get("delivery", "attempts") != float64(3) || sent.str("status") != "pending" {
		t.Fatalf("after two transient failures: %s", sent.Raw)
	}
}

// A send that Mailgun accepted but whose answer was lost is not sent again on retry.
func TestLostSendResultIsNotSentTwice(t *testing.T) {
	org := createOrganization(t, "Lossy Org", nil)
	email := uniqueEmail(t, "lossy")
	faultFor(t, email, func(attempt int) *mailgunsrv.Fault {
		if attempt == 1 {
			return &mailgunsrv.Fault{AcceptThenFail: true, Status: http.StatusBadGateway}
		}
		return nil
	})
	id := invite(t, map[string]any{"email": email, "organization_id": org}).str("id")
	waitForDelivery(t, id, "sent")
	if n := len(mailTo(email, "invitation")); n != 1 {
		t.Fatalf("%d copies of one invitation e-mail", n)
	}
	token := tokenIn(t, mailTo(email, "invitation")[0], "invite")
	expect(t, call(t, "POST", "/v1/public/invitations/accept", map[string]any{"token": token}, withoutKey), http.StatusOK, "")
}

// The worker stops while the invitation e-mail is in flight, after Mailgun took it; a new
// worker finishes the journey, and nothing happens twice.
func TestWorkerRestartMidJourney(t *testing.T) {
	org := createOrganization(t, "Restart Org", nil)
	email := uniqueEmail(t, "restart")
	inFlight, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	faultFor(t, email, func(attempt int) *mailgunsrv.Fault {
		if attempt != 1 {
			return nil
		}
		once.Do(func() { close(inFlight) })
		<-release
		return &mailgunsrv.Fault{AcceptThenFail: true}
	})
	id := invite(t, map[string]any{"email": email, "organization_id": org}).str("id")
	select {
	case <-inFlight:
	case <-time.After(30 * time.Second):
		t.Fatal("the invitation e-mail was never sent")
	}
	stopped := make(chan struct{})
	go func() { env.stopWorker(); close(stopped) }()
	close(release)
	<-stopped
	if err := env.startWorker(); err != nil {
		t.Fatal(err)
	}

	waitForDelivery(t, id, "sent")
	token := tokenIn(t, waitForMail(t, email, "invitation", 1)[0], "invite")

	// And again between the e-mail and the accept: the accept waits for a worker.
	env.stopWorker()
	go func() {
		time.Sleep(time.Second)
		if err := env.startWorker(); err != nil {
			t.Error(err)
		}
	}()
	expect(t, call(t, "POST", "/v1/public/invitations/accept", map[string]any{"token": token}, withoutKey), http.StatusOK, "")
	waitForMail(t, email, "set_password", 1)
	waitForStatus(t, id, "accepted")

	if n := len(mailTo(email, "invitation")); n != 1 {
		t.Fatalf("%d invitation e-mails after the restart", n)
	}
	if n := countRows(t, "SELECT COUNT(*) FROM users WHERE email = ?", email); n != 1 {
		t.Fatalf("%d users", n)
	}
	if n := countRows(t, "SELECT COUNT(*) FROM memberships m JOIN users u ON u.id = m.user_id WHERE u.email = ?", email); n != 1 {
		t.Fatalf("%d memberships", n)
	}
	time.Sleep(500 * time.Millisecond)
	if n := len(mailTo(email, "set_password")); n != 1 {
		t.Fatalf("%d set-password e-mails", n)
	}
}

func TestConcurrentAcceptsMakeOneUser(t *testing.T) {
	org := createOrganization(t, "Race Org", nil)
	email := uniqueEmail(t, "race")
	id := invite(t, map[string]any{"email": email, "organization_id": org}).str("id")
	token := tokenIn(t, waitForMail(t, email, "invitation", 1)[0], "invite")

	const clients = 20
	results := make([]response, clients)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i] = call(t, "POST", "/v1/public/invitations/accept",
				map[string]any{"token": token, "password": fmt.Sprintf("password number %d", i)}, withoutKey)
		}()
	}
	close(start)
	wg.Wait()

	won, used := 0, 0
	for _, r := range results {
		switch {
		case r.Status == http.StatusOK:
			won++
		case r.Status == http.StatusConflict && r.code() == "invitation_used":
			used++
		default:
			t.Errorf("unexpected answer %d: %s", r.Status, r.Raw)
		}
	}
	if won != 1 || used != clients-1 {
		t.Fatalf("%d accepts won and %d were refused as used; want 1 and %d", won, used, clients-1)
	}
	waitForStatus(t, id, "accepted")
	if n := countRows(t, "SELECT COUNT(*) FROM users WHERE email = ?", email); n != 1 {
		t.Fatalf("%d users for one e-mail", n)
	}
	if n := countRows(t, "SELECT COUNT(*) FROM memberships m JOIN users u ON u.id = m.user_id WHERE u.email = ?", email); n != 1 {
		t.Fatalf("%d memberships", n)
	}
}

func TestIdempotencyKey(t *testing.T) {
	org := createOrganization(t, "Idem Org", nil)
	email := uniqueEmail(t, "idem")
	body := map[string]any{"email": email, "organization_id": org}
	key := withHeader("Idempotency-Key", "create-"+email)

	const clients = 8
	ids := make([]string, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := call(t, "POST", "/v1/invitations", body, key)
			if r.Status != http.StatusCreated {
				t.Errorf("attempt %d: %d %s", i, r.Status, r.Raw)
			}
			ids[i] = r.str("id")
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("one idempotency key made several invitations: %v", ids)
		}
	}
	replay := call(t, "POST", "/v1/invitations", body, key)
	if replay.str("id") != ids[0] || replay.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %s", replay.Raw)
	}
	changed := call(t, "POST", "/v1/invitations", map[string]any{"email": email, "organization_id": org, "role": "admin"}, key)
	expect(t, changed, http.StatusUnprocessableEntity, "idempotency_key_reused")
	if n := countRows(t, "SELECT COUNT(*) FROM invitations WHERE email = ?", email); n != 1 {
		t.Fatalf("%d invitations", n)
	}
	waitForMail(t, email, "invitation", 1)
	time.Sleep(300 * time.Millisecond)
	if n := len(mailTo(email, "invitation")); n != 1 {
		t.Fatalf("%d e-mails for one idempotent invitation", n)
	}
}

// An invitation stored by an API that died before starting its workflow is started by the
// reconciler.
func TestReconcilerStartsOrphanedInvitations(t *testing.T) {
	org := createOrganization(t, "Orphan Org", nil)
	email := uniqueEmail(t, "orphan")
	inv, _, err := env.store.CreateInvitation(context.Background(), store.NewInvitation{
		OrganizationID: org, Email: email, Role: "member", Locale: "en", ExpiresIn: time.Hour,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := &worker.Reconciler{Store: env.store, Temporal: env.client, Logger: quietLogger(), Grace: 0}
	started, err := r.ReconcileOnce(context.Background())
	if err != nil || started < 1 {
		t.Fatalf("started %d, err %v", started, err)
	}
	waitForMail(t, email, "invitation", 1)
	again, err := r.ReconcileOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	waitForDelivery(t, inv.ID, "sent")
	_ = again
	if n := len(mailTo(email, "invitation")); n != 1 {
		t.Fatalf("%d e-mails", n)
	}
}

// A revoke that lands while the first send's activity is completing used to fail its
// workflow task (UnhandledCommand: the workflow tried to complete while the activity's result
// arrived), which rolled the update back after its status was written to MySQL. The API
// retries such an update; the workflow and MySQL must end up agreeing.
func TestRevokeRacingTheFirstSendIsNotLost(t *testing.T) {
	org := createOrganization(t, "Racing Org", nil)
	for range 8 {
		email := uniqueEmail(t, "racing")
		id := invite(t, map[string]any{"email": email, "organization_id": org}).str("id")
		waitForMail(t, email, "invitation", 1)
		expect(t, call(t, "POST", "/v1/invitations/"+id+"/revoke", nil), http.StatusOK, "")

		var outcome workflows.InvitationOutcome
		if err := env.client.GetWorkflow(context.Background(), workflows.InvitationWorkflowID(id), "").Get(context.Background(), &outcome); err != nil {
			t.Fatal(err)
		}
		if stored := call(t, "GET", "/v1/invitations/"+id, nil).str("status"); outcome.Status != domain.StatusRevoked || stored != "revoked" {
			t.Fatalf("workflow ended %q, MySQL says %q; both should be revoked", outcome.Status, stored)
		}
	}
}
