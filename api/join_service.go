package api

import (
	"context"
	"time"

	"github.com/usherhq/usher/internal/domain"
)

// The join-request operations behind the public endpoints and the hosted pages.

// MemberProfile is what a member chose to publish. Nothing else about them is ever shown.
type MemberProfile struct {
	MemberID         string
	DisplayName      string
	OrganizationName string
	City             string
	Bio              string
	LogoURL          *string
}

// JoinRequestInput is what a visitor fills in.
type JoinRequestInput struct {
	MemberID string
	Name     string
	Email    string
	Message  string
	// Locale of the visitor's page, for the e-mails they get.
	Locale string
}

// JoinRequestView is what the visitor's confirmation page and the member's decision page
// show of a request.
type JoinRequestView struct {
	ID               string
	Status           string
	VisitorName      string
	VisitorEmail     string
	Message          string
	MemberName       string
	OrganizationName string
	LogoURL          *string
	Locale           string
	CreatedAt        time.Time
	// DecideBy is when a pending request expires without a decision.
	DecideBy *time.Time
}

// JoinRoles are the roles a member may give an approved visitor.
var JoinRoles = domain.JoinRoles

// searchMember finds the member with a public profile and this e-mail address. Whether a
// private account uses the address is never revealed: both answer member_not_found. Rate
// limited per client address (rate_limited).
func (s *Server) searchMember(ctx context.Context, clientIP, email string) (MemberProfile, error) {
	return s.joins().searchMember(ctx, clientIP, email)
}

// memberProfile is the public profile of member ID; member_not_found if it is not public.
func (s *Server) memberProfile(ctx context.Context, memberID string) (MemberProfile, error) {
	return s.joins().memberProfile(ctx, memberID)
}

// requestToJoin files a join request and e-mails the visitor a confirmation link. A
// repeated request for the same member and address while one is open returns the open one.
func (s *Server) requestToJoin(ctx context.Context, clientIP string, in JoinRequestInput) (JoinRequestView, error) {
	return s.joins().request(ctx, clientIP, in)
}

// viewJoinRequest resolves a confirmation link (purpose "confirm") or a decision link
// (purpose "decide") without changing anything.
func (s *Server) viewJoinRequest(ctx context.Context, token, purpose string) (JoinRequestView, error) {
	return s.joins().view(ctx, token, purpose)
}

// confirmJoinRequest confirms the visitor's address; the member is then asked to decide.
func (s *Server) confirmJoinRequest(ctx context.Context, token string) (JoinRequestView, error) {
	return s.joins().confirm(ctx, token)
}

// decideJoinRequest approves (with role, default member) or rejects a request through the
// member's decision link.
func (s *Server) decideJoinRequest(ctx context.Context, token, decision, role string) (JoinRequestView, error) {
	return s.joins().decide(ctx, token, decision, role)
}
