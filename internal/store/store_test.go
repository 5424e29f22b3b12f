package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/domain"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/testdb"
)

func newStore(t *testing.T) *store.Store {
	_, db := testdb.New(t)
	return store.New(db, nil)
}

func pendingInvitation(t *testing.T, s *store.Store, email string) store.Invitation {
	t.Helper()
	ctx := context.Background()
	org, err := s.CreateOrganization(ctx, "Org", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	inv, _, err := s.CreateInvitation(ctx, store.NewInvitation{OrganizationID: org.ID, Email: email, Role: "member", Locale: "en", ExpiresIn: time.Hour}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

// A retried accept (the activity ran, the worker died before reporting) returns the first
// outcome and creates nothing more.
func TestAcceptInvitationIsIdempotent(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	inv := pendingInvitation(t, s, "retry@example.com")
	if err := s.StageCredentials(ctx, "01a1fdb4-0000-7000-8000-000000000001", inv.ID, []byte("$2a$10$hash")); err != nil {
		t.Fatal(err)
	}
	req := store.AcceptRequest{InvitationID: inv.ID, AttemptID: "01a1fdb4-0000-7000-8000-000000000001", EventKey: "run/1/accept"}
	first, err := s.AcceptInvitation(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	second, err := s.AcceptInvitation(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if first != second || !first.PasswordSet || first.ExistingUser {
		t.Fatalf("first %+v, retry %+v", first, second)
	}
	_, memberships, err := s.GetUser(ctx, first.UserID)
	if err != nil || len(memberships) != 1 {
		t.Fatalf("memberships %v, %v", memberships, err)
	}
}

// Accepts of two invitations for one address, racing in two organizations, end with one
// account holding both memberships.
func TestRacingAcceptsShareOneAccount(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	var invitations []store.Invitation
	for range 2 {
		invitations = append(invitations, pendingInvitation(t, s, "twice@example.com"))
	}
	results := make([]store.Acceptance, len(invitations))
	var wg sync.WaitGroup
	for i, inv := range invitations {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The activity retries a lost race; so does this loop.
			for attempt := 0; attempt < 20; attempt++ {
				out, err := s.AcceptInvitation(ctx, store.AcceptRequest{InvitationID: inv.ID, AttemptID: store.NewID(), EventKey: inv.ID + "/accept"})
				if err == nil {
					results[i] = out
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
			t.Errorf("accept of %s never succeeded", inv.ID)
		}()
	}
	wg.Wait()
	if results[0].UserID == "" || results[0].UserID != results[1].UserID {
		t.Fatalf("accepts produced users %q and %q", results[0].UserID, results[1].UserID)
	}
	if results[0].ExistingUser == results[1].ExistingUser {
		t.Fatalf("exactly one accept should have created the account: %+v", results)
	}
	_, memberships, _ := s.GetUser(ctx, results[0].UserID)
	if len(memberships) != 2 {
		t.Fatalf("%d memberships, want 2", len(memberships))
	}
}

func TestOneOpenInvitationPerOrganizationAndEmail(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	inv := pendingInvitation(t, s, "once@example.com")
	_, _, err := s.CreateInvitation(ctx, store.NewInvitation{OrganizationID: inv.OrganizationID, Email: "once@example.com", Role: "member", Locale: "en", ExpiresIn: time.Hour}, nil)
	if domain.ErrorCode(err) != domain.CodeInvitationPending {
		t.Fatalf("second open invitation: %v", err)
	}
	expired := store.StatusChange{EventKey: "k1", InvitationID: inv.ID, Action: "expire", From: domain.StatusPending, To: domain.StatusExpired}
	if err := s.ApplyStatusChange(ctx, expired); err != nil {
		t.Fatal(err)
	}
	// Applying the same decision twice records it once.
	if err := s.ApplyStatusChange(ctx, expired); err != nil {
		t.Fatal(err)
	}
	events, _ := s.InvitationEvents(ctx, inv.ID)
	if len(events) != 2 { // create, expire
		t.Fatalf("%d audit events", len(events))
	}
	fresh, _, err := s.CreateInvitation(ctx, store.NewInvitation{OrganizationID: inv.OrganizationID, Email: "once@example.com", Role: "member", Locale: "en", ExpiresIn: time.Hour}, nil)
	if err != nil {
		t.Fatalf("an expired invitation blocks a new one: %v", err)
	}
	// Reopening the expired one now collides with the fresh one.
	reopen := store.StatusChange{EventKey: "k2", InvitationID: inv.ID, Action: "renew", From: domain.StatusExpired, To: domain.StatusPending, DeliveryKey: "d2"}
	err = s.ApplyStatusChange(ctx, reopen)
	if de, ok := err.(*domain.Error); !ok || de.Code != domain.CodeInvitationPending || de.Details["invitation_id"] != fresh.ID {
		t.Fatalf("reopen: %v", err)
	}
}

func TestSupersededDeliveryIsRefused(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	inv := pendingInvitation(t, s, "resend@example.com")
	for i, key := range []string{"d1", "d2"} {
		change := store.StatusChange{EventKey: "send-" + key, InvitationID: inv.ID, Action: "send", From: domain.StatusPending, To: domain.StatusPending, DeliveryKey: key}
		if err := s.ApplyStatusChange(ctx, change); err != nil {
			t.Fatal(i, err)
		}
	}
	_, hash := domain.NewToken()
	if _, err := s.BeginInvitationDelivery(ctx, "d1", inv.ID, hash); err != store.ErrSuperseded {
		t.Fatalf("old delivery: %v", err)
	}
	token, hash := domain.NewToken()
	if _, err := s.BeginInvitationDelivery(ctx, "d2", inv.ID, hash); err != nil {
		t.Fatal(err)
	}
	match, err := s.FindInvitationByToken(ctx, domain.HashToken(token))
	if err != nil || match.Replaced || match.DeliveryKey != "d2" {
		t.Fatalf("match %+v, %v", match, err)
	}
}
