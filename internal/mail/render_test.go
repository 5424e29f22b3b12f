package mail

import (
	"flag"
	htmltemplate "html/template"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var showRendered = flag.Bool("show-rendered", false, "log rendered e-mails")

const testLink = "https://usher.example.com/invitations/accept?token=tok_SECRET123&x=1"

var expires = time.Date(2030, time.March, 4, 17, 30, 0, 0, time.FixedZone("CET", 3600))

func mustRender(t *testing.T, kind Kind, locale string, data any) Rendered {
	t.Helper()
	r, err := Render(kind, locale, data)
	if err != nil {
		t.Fatalf("Render(%s, %q): %v", kind, locale, err)
	}
	if *showRendered {
		t.Logf("Subject: %s\n--- text ---\n%s--- html ---\n%s", r.Subject, r.Text, r.HTML)
	}
	if r.Subject == "" || r.Text == "" || r.HTML == "" {
		t.Fatalf("empty part in %+v", r)
	}
	if strings.ContainsAny(r.Subject, "\r\n") || utf8.RuneCountInString(r.Subject) > 120 {
		t.Errorf("subject not a short single line: %q", r.Subject)
	}
	if !strings.HasPrefix(r.HTML, "<!doctype html>") {
		t.Errorf("HTML does not start with a doctype: %.40q", r.HTML)
	}
	if !strings.HasSuffix(r.Text, "\n") || strings.Contains(r.Text, "\n\n\n") {
		t.Errorf("untidy text: %q", r.Text)
	}
	return r
}

// checkLinkOnce verifies the link is the only href in the HTML, exactly once,
// and appears exactly once in the text.
func checkLinkOnce(t *testing.T, r Rendered, link string) {
	t.Helper()
	href := `href="` + htmltemplate.HTMLEscapeString(link) + `"`
	if n := strings.Count(r.HTML, href); n != 1 {
		t.Errorf("HTML has %d occurrences of %s", n, href)
	}
	if n := strings.Count(r.HTML, "href="); n != 1 {
		t.Errorf("HTML has %d hrefs, want 1", n)
	}
	if n := strings.Count(r.Text, link); n != 1 {
		t.Errorf("text has the link %d times, want 1", n)
	}
	if strings.Contains(r.Subject, "token") {
		t.Error("subject contains the token")
	}
}

func TestRenderInvitation(t *testing.T) {
	r := mustRender(t, KindInvitation, "en", InvitationData{
		InviteeName: "Bea", InviterName: "Ann Smith", OrganizationName: "Acme Corp",
		Role: "admin", Link: testLink, ExpiresAt: expires,
	})
	if r.Subject != "Ann Smith invited you to join Acme Corp on Usher" {
		t.Errorf("subject = %q", r.Subject)
	}
	for _, want := range []string{"Hi Bea,", "Ann Smith invited you to join Acme Corp on Usher as an admin.",
		"expires on Monday, 4 March 2030 at 16:30 UTC"} {
		if !strings.Contains(r.Text, want) {
			t.Errorf("text lacks %q:\n%s", want, r.Text)
		}
	}
	for _, want := range []string{"<strong>Ann Smith</strong>", "<strong>Acme Corp</strong>", "Accept invitation",
		"as an <strong>admin</strong>", "Monday, 4 March 2030 at 16:30 UTC", "<title>Ann Smith invited you"} {
		if !strings.Contains(r.HTML, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	checkLinkOnce(t, r, testLink)
}

func TestRenderInvitationFallbacks(t *testing.T) {
	// No inviter: "Someone at <org>".
	r := mustRender(t, KindInvitation, "en", &InvitationData{OrganizationName: "Acme", Role: "member", Link: testLink})
	if r.Subject != "You're invited to join Acme on Usher" {
		t.Errorf("subject = %q", r.Subject)
	}
	if !strings.Contains(r.Text, "Hi there,") || !strings.Contains(r.Text, "Someone at Acme invited you to join Acme on Usher as a member.") {
		t.Errorf("text:\n%s", r.Text)
	}
	if strings.Contains(r.Text, "expires") || strings.Contains(r.HTML, "expires") {
		t.Error("mentions an expiry although there is none")
	}
	checkLinkOnce(t, r, testLink)

	// Nothing but the link.
	r = mustRender(t, KindInvitation, "en", InvitationData{Link: testLink, Role: "org_owner"})
	if !strings.Contains(r.Text, "Someone invited you to join an organization on Usher as an org owner.") {
		t.Errorf("text:\n%s", r.Text)
	}
}

func TestRenderSetPassword(t *testing.T) {
	r := mustRender(t, KindSetPassword, "en", SetPasswordData{Name: "Bea", OrganizationName: "Acme", Link: testLink, ExpiresAt: expires})
	if r.Subject != "Set your Usher password for Acme" {
		t.Errorf("subject = %q", r.Subject)
	}
	if !strings.Contains(r.Text, "Hi Bea,") || !strings.Contains(r.Text, "expires on Monday, 4 March 2030 at 16:30 UTC") {
		t.Errorf("text:\n%s", r.Text)
	}
	if !strings.Contains(r.HTML, "Set your password") {
		t.Error("HTML lacks the button label")
	}
	checkLinkOnce(t, r, testLink)
}

func TestRenderInvitationAccepted(t *testing.T) {
	r := mustRender(t, KindInvitationAccepted, "en", InvitationAcceptedData{
		InviterName: "Ann", InviteeName: "Bea", InviteeEmail: "bea@example.com", OrganizationName: "Acme", Role: "editor",
	})
	if r.Subject != "Bea joined Acme on Usher" {
		t.Errorf("subject = %q", r.Subject)
	}
	if !strings.Contains(r.Text, "Hi Ann,") || !strings.Contains(r.Text, "Bea (bea@example.com) accepted your invitation and joined Acme on Usher as an editor.") {
		t.Errorf("text:\n%s", r.Text)
	}
	if strings.Contains(r.HTML, "href=") {
		t.Error("invitation_accepted should not contain links")
	}
	r = mustRender(t, KindInvitationAccepted, "en", InvitationAcceptedData{InviteeEmail: "bea@example.com"})
	if r.Subject != "bea@example.com joined an organization on Usher" {
		t.Errorf("subject = %q", r.Subject)
	}
}

func TestRenderEscapesHostileInput(t *testing.T) {
	hostile := `<script>alert("x")</script> & "Co"`
	r := mustRender(t, KindInvitation, "en", InvitationData{
		InviteeName: `<img src=x onerror=alert(1)>`, InviterName: "Mallory\r\nBcc: victim@example.com",
		OrganizationName: hostile, Role: `<b>boss</b>`, Link: testLink, ExpiresAt: expires,
	})
	for _, bad := range []string{"<script>", "<img", "<b>boss</b>", `"Co"`} {
		if strings.Contains(r.HTML, bad) {
			t.Errorf("HTML contains unescaped %q", bad)
		}
	}
	if !strings.Contains(r.HTML, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &#34;Co&#34;") {
		t.Errorf("HTML lacks the escaped organization name:\n%s", r.HTML)
	}
	// Subject and text are plain text: no HTML escaping, but no line breaks either.
	if !strings.Contains(r.Text, hostile) || !strings.Contains(r.Subject, "Mallory Bcc: victim@example.com") {
		t.Errorf("subject %q / text:\n%s", r.Subject, r.Text)
	}
	if strings.ContainsAny(r.Subject, "\r\n") || strings.Contains(r.Text, "Mallory\r") || strings.Contains(r.Text, "Mallory\n") {
		t.Error("line break from a name survived")
	}
	checkLinkOnce(t, r, testLink)
}

func TestRenderLocaleFallback(t *testing.T) {
	data := InvitationData{InviterName: "Ann", OrganizationName: "Acme", Link: testLink}
	want := mustRender(t, KindInvitation, "en", data)
	for _, locale := range []string{"", "EN", "en-GB", "en_US", "it", "pt-BR", "zz-Hant-XX"} {
		if got := mustRender(t, KindInvitation, locale, data); got != want {
			t.Errorf("locale %q rendered differently from en", locale)
		}
	}
	if got := localeCandidates("pt_BR"); strings.Join(got, ",") != "pt-br,pt,en" {
		t.Errorf("localeCandidates = %v", got)
	}
}

func TestRenderErrors(t *testing.T) {
	tests := []struct {
		name string
		kind Kind
		data any
	}{
		{"unknown kind", Kind("newsletter"), InvitationData{Link: testLink}},
		{"wrong data type", KindInvitation, SetPasswordData{Link: testLink}},
		{"nil pointer", KindSetPassword, (*SetPasswordData)(nil)},
		{"missing link", KindInvitation, InvitationData{OrganizationName: "Acme"}},
		{"javascript link", KindInvitation, InvitationData{Link: "javascript:alert(1)"}},
		{"relative link", KindSetPassword, SetPasswordData{Link: "/set-password?token=x"}},
		{"link with space", KindSetPassword, SetPasswordData{Link: "https://x.test/a b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Render(tt.kind, "en", tt.data); err == nil {
				t.Error("expected an error")
			}
		})
	}
}

func TestEnglishArticle(t *testing.T) {
	for word, want := range map[string]string{"admin": "an", "member": "a", "owner": "an", "editor": "an",
		"user": "a", "viewer": "a", "hourly": "an", "": "a", "Admin": "an"} {
		if got := englishArticle(word); got != want {
			t.Errorf("englishArticle(%q) = %q, want %q", word, got, want)
		}
	}
}
