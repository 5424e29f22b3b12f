package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/domain"
	"github.com/usherhq/usher/internal/store"
)

type observed struct {
	sync.Mutex
	events []store.Event
}

func (o *observed) add(e store.Event) { o.Lock(); o.events = append(o.events, e); o.Unlock() }

func (o *observed) types() []string {
	o.Lock()
	defer o.Unlock()
	var out []string
	for _, e := range o.events {
		out = append(out, e.Type)
	}
	return out
}

func eventTypes(t *testing.T, s *store.Store, subject string) []string {
	t.Helper()
	events, err := s.ListEvents(context.Background(), subject)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range events {
		out = append(out, e.Type)
	}
	return out
}

func sameList(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }

// Every change records its event once, even when the activity that made it is retried,
// and the observer hears of each event once, after commit.
func TestEventsAreRecordedOncePerChange(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	var seen observed
	s.SetEventObserver(seen.add)

	inv := pendingInvitation(t, s, "events@example.com")
	send := store.StatusChange{EventKey: "run/1/send", InvitationID: inv.ID, Action: "send", From: domain.StatusPending, To: domain.StatusPending, DeliveryKey: "run/2/invite"}
	for range 2 {
		if err := s.ApplyStatusChange(ctx, send); err != nil {
			t.Fatal(err)
		}
	}
	_, hash := domain.NewToken()
	if _, err := s.BeginInvitationDelivery(ctx, "run/2/invite", inv.ID, hash); err != nil {
		t.Fatal(err)
	}
	for range 2 { // a retried FinishDelivery
		if err := s.FinishDelivery(ctx, "run/2/invite", "provider-1"); err != nil {
			t.Fatal(err)
		}
	}
	accept := store.AcceptRequest{InvitationID: inv.ID, AttemptID: store.NewID(), EventKey: "run/3/accept"}
	var first store.Acceptance
	for i := range 2 {
		out, err := s.AcceptInvitation(ctx, accept)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = out
		}
	}

	want := []string{store.EventInvitationCreated, store.EventInvitationSent, store.EventInvitationAccepted}
	if got := eventTypes(t, s, inv.ID); !sameList(got, want) {
		t.Fatalf("invitation events %v, want %v", got, want)
	}
	if got := eventTypes(t, s, first.UserID); !sameList(got, []string{store.EventUserCreated}) {
		t.Fatalf("user events %v", got)
	}
	want = append(want, store.EventUserCreated)
	if got := seen.types(); !sameList(got, want) {
		t.Fatalf("observer heard %v, want %v", got, want)
	}

	events, _ := s.ListEvents(ctx, inv.ID)
	var accepted map[string]any
	if err := json.Unmarshal(events[2].Data, &accepted); err != nil {
		t.Fatal(err)
	}
	if accepted["user_id"] != first.UserID || accepted["role"] != "member" || accepted["existing_user"] != false {
		t.Fatalf("accepted data %v", accepted)
	}
	if sentAt, _ := time.Parse(time.RFC3339Nano, accepted["sent_at"].(string)); !sentAt.Equal(events[1].OccurredAt) {
		t.Fatalf("sent_at %v, want the invitation.sent time %v", accepted["sent_at"], events[1].OccurredAt)
	}
	for _, e := range events {
		if strings.Contains(string(e.Data), "@") || e.OrganizationID != inv.OrganizationID {
			t.Fatalf("event %s: %s (organization %q)", e.Type, e.Data, e.OrganizationID)
		}
	}
}

// A change that is refused records no event and the observer hears nothing.
func TestRefusedChangeRecordsNoEvent(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	inv := pendingInvitation(t, s, "refused@example.com")
	var seen observed
	s.SetEventObserver(seen.add)
	_, _, err := s.CreateInvitation(ctx, store.NewInvitation{OrganizationID: inv.OrganizationID, Email: "refused@example.com", Role: "member", Locale: "en", ExpiresIn: time.Hour}, nil)
	if domain.ErrorCode(err) != domain.CodeInvitationPending {
		t.Fatalf("second open invitation: %v", err)
	}
	if len(seen.types()) != 0 {
		t.Fatalf("observer heard %v", seen.types())
	}
	for _, c := range []store.StatusChange{
		{EventKey: "r/1/revoke", InvitationID: inv.ID, Action: "revoke", From: domain.StatusPending, To: domain.StatusRevoked},
		{EventKey: "r/1/revoke", InvitationID: inv.ID, Action: "revoke", From: domain.StatusPending, To: domain.StatusRevoked},
	} {
		if err := s.ApplyStatusChange(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if got := seen.types(); !sameList(got, []string{store.EventInvitationRevoked}) {
		t.Fatalf("observer heard %v", got)
	}
}

// People put on file get user.created once, only for the accounts the import made.
func TestPutOnFileRecordsUserCreated(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	org, err := s.CreateOrganization(ctx, "Org", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	existing, err := s.CreateUser(ctx, "already@example.com", "Already", nil)
	if err != nil {
		t.Fatal(err)
	}
	var seen observed
	s.SetEventObserver(seen.add)
	people := []store.NewPerson{
		{Email: "already@example.com", OrganizationID: org.ID, Role: "member"},
		{Email: "new@example.com", OrganizationID: org.ID, Role: "member"},
	}
	for range 2 {
		if _, _, err := s.PutOnFile(ctx, people); err != nil {
			t.Fatal(err)
		}
	}
	if got := seen.types(); !sameList(got, []string{store.EventUserCreated}) {
		t.Fatalf("observer heard %v", got)
	}
	if seen.events[0].SubjectID == existing.ID || seen.events[0].OrganizationID != org.ID {
		t.Fatalf("user.created %+v", seen.events[0])
	}
}

// An event is queued, in its own transaction, for each active endpoint that wants it.
func TestEventsQueueWebhookDeliveries(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	org, err := s.CreateOrganization(ctx, "Org", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.CreateOrganization(ctx, "Other", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	all, _ := s.CreateWebhookEndpoint(ctx, store.WebhookEndpoint{URL: "https://a.example/hook", Events: []string{"*"}, SecretCiphertext: []byte("x")})
	created, _ := s.CreateWebhookEndpoint(ctx, store.WebhookEndpoint{URL: "https://b.example/hook", Events: []string{store.EventInvitationCreated}, SecretCiphertext: []byte("x")})
	elsewhere, _ := s.CreateWebhookEndpoint(ctx, store.WebhookEndpoint{URL: "https://c.example/hook", Events: []string{"*"}, OrganizationID: &other.ID, SecretCiphertext: []byte("x")})
	disabled, _ := s.CreateWebhookEndpoint(ctx, store.WebhookEndpoint{URL: "https://d.example/hook", Events: []string{"*"}, SecretCiphertext: []byte("x")})
	if _, err := s.DisableWebhookEndpoint(ctx, disabled.ID); err != nil {
		t.Fatal(err)
	}

	inv, _, err := s.CreateInvitation(ctx, store.NewInvitation{OrganizationID: org.ID, Email: "hooks@example.com", Role: "member", Locale: "en", ExpiresIn: time.Hour}, nil)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.WebhooksQueued():
	default:
		t.Fatal("no nudge after queueing deliveries")
	}
	if err := s.ApplyStatusChange(ctx, store.StatusChange{EventKey: "q/1/revoke", InvitationID: inv.ID, Action: "revoke", From: domain.StatusPending, To: domain.StatusRevoked}); err != nil {
		t.Fatal(err)
	}
	count := func(ep store.WebhookEndpoint) int {
		list, err := s.ListWebhookDeliveries(ctx, ep.ID, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		return len(list)
	}
	if count(all) != 2 || count(created) != 1 || count(elsewhere) != 0 || count(disabled) != 0 {
		t.Fatalf("deliveries: all %d, created %d, elsewhere %d, disabled %d", count(all), count(created), count(elsewhere), count(disabled))
	}
	unstarted, err := s.UnstartedWebhookDeliveries(ctx, 100)
	if err != nil || len(unstarted) != 3 {
		t.Fatalf("unstarted %d, %v", len(unstarted), err)
	}
}

// An accept that lands before the provider's answer to the send is recorded still says when
// the send began, so the sent-to-accepted histogram misses no accept.
func TestAcceptBeforeTheSendIsRecordedTimesFromTheSendsStart(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	inv := pendingInvitation(t, s, "early-accept@example.com")
	send := store.StatusChange{EventKey: "run/1/send", InvitationID: inv.ID, Action: "send", From: domain.StatusPending, To: domain.StatusPending, DeliveryKey: "run/2/invite"}
	if err := s.ApplyStatusChange(ctx, send); err != nil {
		t.Fatal(err)
	}
	_, hash := domain.NewToken()
	if _, err := s.BeginInvitationDelivery(ctx, "run/2/invite", inv.ID, hash); err != nil {
		t.Fatal(err)
	}
	delivery, _, err := s.GetDelivery(ctx, "run/2/invite")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AcceptInvitation(ctx, store.AcceptRequest{InvitationID: inv.ID, AttemptID: store.NewID(), EventKey: "run/3/accept"}); err != nil {
		t.Fatal(err)
	}
	events, _ := s.ListEvents(ctx, inv.ID)
	var accepted map[string]any
	for _, e := range events {
		if e.Type == store.EventInvitationAccepted {
			_ = json.Unmarshal(e.Data, &accepted)
		}
	}
	sentAt, err := time.Parse(time.RFC3339Nano, fmt.Sprint(accepted["sent_at"]))
	if err != nil || !sentAt.Equal(delivery.CreatedAt) {
		t.Fatalf("sent_at %v, want the delivery's start %v", accepted["sent_at"], delivery.CreatedAt)
	}
}
