package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/domain"
	"github.com/usherhq/usher/internal/store"
)

func TestPublicMemberSearchRevealsOnlyPublicProfiles(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	org, _ := s.CreateOrganization(ctx, "Org", nil, nil)
	public, _ := s.CreateUser(ctx, "public@example.com", "Pub", nil)
	private, _ := s.CreateUser(ctx, "private@example.com", "Priv", nil)
	for _, u := range []store.User{public, private} {
		if err := s.AddMembership(ctx, u.ID, org.ID, "member"); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetPublicProfile(ctx, public.ID, &store.PublicProfile{DisplayName: "P", OrganizationID: org.ID, City: "Oslo"}); err != nil {
		t.Fatal(err)
	}
	m, err := s.FindPublicMemberByEmail(ctx, "public@example.com")
	if err != nil || m.MemberID != public.ID || m.OrganizationName != "Org" || m.City != "Oslo" {
		t.Fatalf("public member: %+v, %v", m, err)
	}
	for _, email := range []string{"private@example.com", "nobody@example.com"} {
		if _, err := s.FindPublicMemberByEmail(ctx, email); domain.ErrorCode(err) != domain.CodeMemberNotFound {
			t.Fatalf("%s: %v", email, err)
		}
	}
	other, _ := s.CreateOrganization(ctx, "Other", nil, nil)
	if err := s.SetPublicProfile(ctx, public.ID, &store.PublicProfile{DisplayName: "P", OrganizationID: other.ID}); domain.ErrorCode(err) != domain.CodeInvalidRequest {
		t.Fatalf("profile naming a foreign organization: %v", err)
	}
}

func TestApproveJoinRequestIsIdempotentAndDuplicatesReturnTheOpenRequest(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	org, _ := s.CreateOrganization(ctx, "Org", nil, nil)
	member, _ := s.CreateUser(ctx, "member@example.com", "M", nil)
	in := store.NewJoinRequest{MemberID: member.ID, OrganizationID: org.ID, VisitorEmail: "v@example.com", VisitorName: "V", Locale: "en", ConfirmWindow: time.Hour}
	jr, created, err := s.CreateJoinRequest(ctx, in)
	if err != nil || !created {
		t.Fatal(created, err)
	}
	again, created, err := s.CreateJoinRequest(ctx, in)
	if err != nil || created || again.ID != jr.ID {
		t.Fatalf("duplicate: %+v created=%v %v", again, created, err)
	}
	if _, err := s.ApproveJoinRequest(ctx, jr.ID, "member", "k/approve"); domain.ErrorCode(err) != domain.CodeInvalidState {
		t.Fatalf("approve before confirm: %v", err)
	}
	if err := s.ApplyJoinStatusChange(ctx, store.JoinStatusChange{EventKey: "k/confirm", JoinRequestID: jr.ID, Action: "confirm", From: domain.JoinUnconfirmed, To: domain.JoinPending}); err != nil {
		t.Fatal(err)
	}
	first, err := s.ApproveJoinRequest(ctx, jr.ID, "admin", "k/approve")
	if err != nil {
		t.Fatal(err)
	}
	second, err := s.ApproveJoinRequest(ctx, jr.ID, "admin", "k/approve")
	if err != nil || first != second || first.ExistingUser {
		t.Fatalf("first %+v, retry %+v, %v", first, second, err)
	}
	_, memberships, _ := s.GetUser(ctx, first.UserID)
	if len(memberships) != 1 || memberships[0].Role != "admin" {
		t.Fatalf("memberships %+v", memberships)
	}
	fresh, created, err := s.CreateJoinRequest(ctx, in)
	if err != nil || !created || fresh.ID == jr.ID {
		t.Fatalf("a closed request still blocks a new one: %v %v", created, err)
	}
}
