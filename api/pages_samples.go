package api

import (
	"time"
)

type samplePage struct {
	name string
	what string
	data page
}

// samplePages holds data for every page and its main variants. Start-up renders each in
// every language (rehearse), so a template override that names a missing field or text
// fails then, with the page and variant in the message.
func samplePages() []samplePage {
	when := time.Date(2030, time.March, 12, 14, 0, 0, 0, time.UTC)
	logo := "https://example.com/logo.png"
	org := &brand{Name: "Acme", Logo: logo}
	member := MemberProfile{MemberID: "00000000-0000-0000-0000-000000000000", DisplayName: "Mia Member",
		OrganizationName: "Acme", City: "Lyon", Bio: "Builds things.", LogoURL: &logo}
	request := JoinRequestView{ID: "r", Status: "pending", VisitorName: "Vic Visitor", VisitorEmail: "vic@example.com",
		Message: "Hello!", MemberName: "Mia Member", OrganizationName: "Acme", LogoURL: &logo, Locale: "en",
		CreatedAt: when, DecideBy: &when}
	invite := invitePage{Token: "t", Inviter: "Ines", Organization: "Acme", Role: "admin", ExpiresAt: &when,
		EmailHint: "a***@example.com", Name: "Ann"}
	existing := invite
	existing.ExistingUser, existing.Inviter, existing.ExpiresAt = true, "", nil
	invalid := invite
	invalid.NameInvalid, invalid.PasswordInvalid = true, true

	s := func(name, what string, d any, mod ...func(*page)) samplePage {
		p := page{D: d, Org: org}
		for _, m := range mod {
			m(&p)
		}
		return samplePage{name: name, what: what, data: p}
	}
	alert := func(p *page) { p.Alert = "Something is wrong." }
	noOrg := func(p *page) { p.Org = nil }

	out := []samplePage{
		s("invite", "new user", invite),
		s("invite", "existing user", existing),
		s("invite", "errors", invalid, alert),
		s("renewal", "", renewalPage{AskedWho: "Ines", Organization: "Acme"}),
		s("welcome", "new user", welcomePage{Organization: "Acme", PasswordMail: true}),
		s("welcome", "existing user", welcomePage{Organization: "Acme", ExistingUser: true}),
		s("welcome", "unknown", welcomePage{}, noOrg),
		s("password", "", passwordPage{Token: "t"}, noOrg),
		s("password", "error", passwordPage{Token: "t", PasswordInvalid: true}, noOrg, alert),
		s("password_done", "", nil, noOrg),
		s("join_search", "empty", joinSearchPage{}, noOrg),
		s("join_search", "found", joinSearchPage{Email: "mia@example.com", Found: &member}),
		s("join_search", "not found", joinSearchPage{Email: "x@example.com", NotFound: true}, noOrg),
		s("join_search", "error", joinSearchPage{Email: "x", EmailInvalid: true}, noOrg, alert),
		s("join_form", "", joinFormPage{Member: member}),
		s("join_form", "errors", joinFormPage{Member: member, Name: "V", NameInvalid: true, EmailInvalid: true, MessageInvalid: true}, alert),
		s("join_sent", "", joinSentPage{Email: "vic@example.com", Member: "Mia Member"}),
		s("join_confirm", "", joinRequestPage{Token: "t", Request: request}),
		s("join_confirmed", "now", joinRequestPage{Request: request}),
		s("join_confirmed", "already", joinRequestPage{Request: request, Already: true}),
		s("join_decide", "", joinRequestPage{Token: "t", Request: request, Roles: JoinRoles, Role: JoinRoles[0]}),
		s("join_decide", "error", joinRequestPage{Token: "t", Request: request, Roles: JoinRoles, Role: JoinRoles[0]}, alert),
		s("join_decided", "approved", joinRequestPage{Request: request, Decision: "approve", Role: "member"}),
		s("join_decided", "rejected", joinRequestPage{Request: request, Decision: "reject"}),
		s("join_decided", "already", joinRequestPage{Request: request, Already: true, Decision: "approve"}),
		s("message", "", messagePage{Title: "Title", Body: "Body", Back: "/join"}, noOrg),
	}
	for _, kind := range []string{"expired", "revoked", "used", "replaced", "invalid", "closed", "password_invalid",
		"join_invalid", "join_expired", "join_expired_member", "join_cancelled", "join_closed"} {
		out = append(out, s("link", kind, linkPage{Kind: kind, Title: "T", Body: "B", Hint: "H", RenewToken: "t",
			LoginURL: "https://example.com/login", StartOver: "/join"}))
	}
	return out
}
