package mail

import (
	"fmt"
	htmltemplate "html/template"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
)

// translated are the locales Usher embeds; each must translate every kind.
var translated = []string{"en", "ru", "de", "fr", "es"}

const testLogo = "https://cdn.example.com/acme/logo.png?size=96&v=2"

// sampleData returns full data for kind, with names from names (which may
// be hostile) and the link it carries ("" when the kind has none).
func sampleData(kind Kind, name, org, logo string) (any, string) {
	switch kind {
	case KindInvitation:
		return InvitationData{InviteeName: name + " Invitee", InviterName: name + " Inviter", OrganizationName: org,
			Role: "admin", Link: testLink, ExpiresAt: expires, LogoURL: logo}, testLink
	case KindSetPassword:
		return SetPasswordData{Name: name, OrganizationName: org, Link: testLink, ExpiresAt: expires, LogoURL: logo}, testLink
	case KindInvitationAccepted:
		return InvitationAcceptedData{InviterName: name + " Inviter", InviteeName: name + " Invitee",
			InviteeEmail: "bea@example.com", OrganizationName: org, Role: "member", LogoURL: logo}, ""
	case KindJoinConfirm:
		return JoinConfirmData{VisitorName: name + " Visitor", MemberName: name + " Member", OrganizationName: org,
			Link: testLink, ExpiresAt: expires, LogoURL: logo}, testLink
	case KindJoinRequest, KindJoinReminder:
		return JoinRequestData{MemberName: name + " Member", VisitorName: name + " Visitor", VisitorEmail: "vic@example.com",
			Message: "Hello " + name + ",\r\n\r\n\r\nwe met at the conference.\n", OrganizationName: org,
			Link: testLink, DecideBy: expires, LogoURL: logo}, testLink
	case KindJoinApproved:
		return JoinApprovedData{VisitorName: name, OrganizationName: org, Link: testLink, ExpiresAt: expires, LogoURL: logo}, testLink
	case KindJoinRejected:
		return JoinRejectedData{VisitorName: name, OrganizationName: org, LogoURL: logo}, ""
	case KindJoinAlreadyMember:
		return JoinAlreadyMemberData{VisitorName: name, OrganizationName: org, LoginURL: testLink, LogoURL: logo}, testLink
	case KindRenewalRequested:
		return RenewalRequestedData{InviterName: name + " Inviter", InviteeName: name + " Invitee",
			InviteeEmail: "bea@example.com", OrganizationName: org, LogoURL: logo}, ""
	case KindInvitationReminder:
		return InvitationData{InviteeName: name + " Invitee", InviterName: name + " Inviter", OrganizationName: org,
			Role: "admin", Link: testLink, ExpiresAt: expires, LogoURL: logo}, testLink
	case KindInvitationFailed:
		return InvitationFailedData{InviterName: name + " Inviter", InviteeName: name + " Invitee", InviteeEmail: "bea@example.com",
			OrganizationName: org, Reason: "550 5.1.1 mailbox unavailable", LogoURL: logo}, ""
	case KindInvitationExpired:
		return InvitationExpiredData{InviterName: name + " Inviter", InviteeName: name + " Invitee", InviteeEmail: "bea@example.com",
			OrganizationName: org, ExpiresAt: expires, LogoURL: logo}, ""
	}
	panic("no sample for " + kind)
}

// minimalData returns the least data kind accepts, and its link.
func minimalData(kind Kind) (any, string) {
	switch kind {
	case KindInvitation:
		return InvitationData{Link: testLink}, testLink
	case KindSetPassword:
		return SetPasswordData{Link: testLink}, testLink
	case KindInvitationAccepted:
		return InvitationAcceptedData{}, ""
	case KindJoinConfirm:
		return JoinConfirmData{Link: testLink}, testLink
	case KindJoinRequest, KindJoinReminder:
		return JoinRequestData{Link: testLink}, testLink
	case KindJoinApproved:
		return JoinApprovedData{Link: testLink}, testLink
	case KindJoinRejected:
		return JoinRejectedData{}, ""
	case KindJoinAlreadyMember:
		return JoinAlreadyMemberData{}, ""
	case KindRenewalRequested:
		return RenewalRequestedData{}, ""
	case KindInvitationReminder:
		return InvitationData{Link: testLink}, testLink
	case KindInvitationFailed:
		return InvitationFailedData{}, ""
	case KindInvitationExpired:
		return InvitationExpiredData{}, ""
	}
	panic("no sample for " + kind)
}

// checkClean fails on leftovers of templates or of html/template's filters.
func checkClean(t *testing.T, r Rendered) {
	t.Helper()
	for part, s := range map[string]string{"subject": r.Subject, "text": r.Text, "html": r.HTML} {
		for _, bad := range []string{"<no value>", "{{", "}}", "ZgotmplZ", "%!", "MISSING"} {
			if strings.Contains(s, bad) {
				t.Errorf("%s contains %q:\n%s", part, bad, s)
			}
		}
	}
}

var tag = regexp.MustCompile(`<[^>]*>`)

// checkPlain fails on markup in the plain-text parts (for data without any).
func checkPlain(t *testing.T, r Rendered) {
	t.Helper()
	if strings.Contains(r.Text, "<") || strings.Contains(r.Subject, "<") || strings.Contains(r.Text, "&amp;") {
		t.Errorf("markup in a plain-text part: %q / %q", r.Subject, r.Text)
	}
}

func checkNoLink(t *testing.T, r Rendered) {
	t.Helper()
	if strings.Contains(r.HTML, "href=") || strings.Contains(r.Text, "http") {
		t.Errorf("unexpected link:\n%s\n%s", r.Text, r.HTML)
	}
}

func TestEveryKindEveryLocale(t *testing.T) {
	english := map[Kind]Rendered{}
	for _, locale := range translated {
		for _, kind := range Kinds {
			t.Run(locale+"/"+string(kind), func(t *testing.T) {
				for _, variant := range []string{"full", "minimal"} {
					data, link := sampleData(kind, "Bea", "Acme Corp", testLogo)
					if variant == "minimal" {
						data, link = minimalData(kind)
					}
					r := mustRender(t, kind, locale, data)
					checkClean(t, r)
					checkPlain(t, r)
					if link != "" {
						checkLinkOnce(t, r, link)
					} else {
						checkNoLink(t, r)
					}
					if !strings.Contains(r.HTML, `<html lang="`+locale+`">`) {
						t.Errorf("%s: HTML is not marked as %q", variant, locale)
					}
					if variant == "full" {
						if !strings.Contains(r.Text, "Acme Corp") || !strings.Contains(r.Subject+r.Text, "Bea") {
							t.Errorf("names missing:\n%s\n%s", r.Subject, r.Text)
						}
						if locale == "en" {
							english[kind] = r
						} else if en := english[kind]; r.Subject == en.Subject || r.Text == en.Text {
							t.Errorf("%s is not translated:\n%s\n%s", locale, r.Subject, r.Text)
						}
					}
				}
			})
		}
	}
}

// Every embedded locale must ship every file, so nothing silently falls
// back to English.
func TestEmbeddedLocalesComplete(t *testing.T) {
	if got := strings.Join(Locales(), ","); got != "de,en,es,fr,ru" {
		t.Errorf("Locales() = %s", got)
	}
	for _, locale := range translated {
		for _, name := range templateFileNames() {
			if _, err := templateFS.ReadFile("templates/" + locale + "/" + name); err != nil {
				t.Errorf("%s/%s: %v", locale, name, err)
			}
		}
	}
}

func TestHostileNamesEveryKind(t *testing.T) {
	for _, locale := range translated {
		for _, kind := range Kinds {
			data, _ := sampleData(kind, "<script>&\r\nBcc: e@x.io", `<img src=x onerror=alert(1)> "Org"`, testLogo)
			r := mustRender(t, kind, locale, data)
			checkClean(t, r)
			for _, bad := range []string{"<script", "<img src=x", `"Org"`} {
				if strings.Contains(r.HTML, bad) {
					t.Errorf("%s/%s: HTML contains %q unescaped", locale, kind, bad)
				}
			}
			if !strings.Contains(r.HTML, "&lt;script&gt;&amp; Bcc: e@x.io") || !strings.Contains(r.HTML, "&lt;img src=x onerror=alert(1)&gt; &#34;Org&#34;") {
				t.Errorf("%s/%s: escaped names missing from HTML", locale, kind)
			}
			if strings.ContainsAny(r.Subject, "\r\n") {
				t.Errorf("%s/%s: line break in subject %q", locale, kind, r.Subject)
			}
			if strings.Contains(r.Text, "\r") || strings.Contains(r.Text, "\nBcc:") {
				t.Errorf("%s/%s: line break from a name survived in the text", locale, kind)
			}
		}
	}
}

func TestRussianInvitationSubjectIsCyrillic(t *testing.T) {
	for _, data := range []InvitationData{
		{InviterName: "Ann Smith", OrganizationName: "Acme Corp", Link: testLink},
		{Link: testLink},
	} {
		r := mustRender(t, KindInvitation, "ru", data)
		if !regexp.MustCompile(`\p{Cyrillic}{4,}`).MatchString(r.Subject) {
			t.Errorf("subject %q is not in Russian", r.Subject)
		}
	}
	r := mustRender(t, KindInvitation, "ru-RU", InvitationData{InviterName: "Анна", OrganizationName: "Acme", Link: testLink})
	if !strings.Contains(r.Subject, "приглашает") {
		t.Errorf("ru-RU subject = %q", r.Subject)
	}
}

func TestLocalizedDatesAndRoles(t *testing.T) {
	tests := []struct {
		locale, date, role string
	}{
		{"en", "Monday, 4 March 2030 at 16:30 UTC", "an admin"},
		{"ru", "4 марта 2030 г. в 16:30 по UTC", "«администратор»"},
		{"de", "Montag, 4. März 2030, 16:30 Uhr UTC", "„Administrator“"},
		{"fr", "lundi 4 mars 2030 à 16 h 30 UTC", "administrateur"},
		{"es", "lunes, 4 de marzo de 2030, a las 16:30 UTC", "administrador"},
	}
	for _, tt := range tests {
		r := mustRender(t, KindInvitation, tt.locale, InvitationData{OrganizationName: "Acme", Role: "admin", Link: testLink, ExpiresAt: expires})
		for _, part := range []string{r.Text, tag.ReplaceAllString(r.HTML, "")} {
			if !strings.Contains(part, tt.date) {
				t.Errorf("%s: lacks date %q:\n%s", tt.locale, tt.date, part)
			}
			if !strings.Contains(part, tt.role) {
				t.Errorf("%s: lacks role %q:\n%s", tt.locale, tt.role, part)
			}
		}
		r = mustRender(t, KindJoinRequest, tt.locale, JoinRequestData{VisitorName: "Vic", Link: testLink, DecideBy: expires})
		if !strings.Contains(r.Text, tt.date) {
			t.Errorf("%s: join request lacks its deadline %q:\n%s", tt.locale, tt.date, r.Text)
		}
	}

	// Roles Usher does not know are shown as they are.
	r := mustRender(t, KindInvitation, "de", InvitationData{Role: "billing_manager", Link: testLink})
	if !strings.Contains(r.Text, "„billing manager“") {
		t.Errorf("text:\n%s", r.Text)
	}
	for _, role := range []string{"owner", "admin", "member", "guest"} {
		r := mustRender(t, KindInvitationAccepted, "ru", InvitationAcceptedData{InviteeName: "Bea", Role: role})
		if strings.Contains(r.Text, role) {
			t.Errorf("ru: role %q not translated:\n%s", role, r.Text)
		}
	}
}

func TestDateFormats(t *testing.T) {
	at := func(locale string, tm time.Time) string {
		return templateFuncs(locale)["date"].(func(time.Time) string)(tm)
	}
	first := time.Date(2031, time.August, 1, 1, 5, 0, 0, time.FixedZone("X", -3*3600)) // 04:05 UTC
	for locale, want := range map[string]string{
		"en":    "Friday, 1 August 2031 at 04:05 UTC",
		"ru":    "1 августа 2031 г. в 04:05 по UTC",
		"de-AT": "Freitag, 1. August 2031, 04:05 Uhr UTC",
		"fr":    "vendredi 1er août 2031 à 4 h 05 UTC",
		"es":    "viernes, 1 de agosto de 2031, a las 4:05 UTC",
		"pt-BR": "Friday, 1 August 2031 at 04:05 UTC", // unknown language: English
	} {
		if got := at(locale, first); got != want {
			t.Errorf("%s: %q, want %q", locale, got, want)
		}
	}
	if got := at("es", time.Date(2031, 1, 2, 1, 0, 0, 0, time.UTC)); !strings.HasSuffix(got, "a la 1:00 UTC") {
		t.Errorf("es at one o'clock: %q", got)
	}
	if got := at("de", time.Time{}); got != "" {
		t.Errorf("zero time: %q", got)
	}
}

func TestJoinRequestMessage(t *testing.T) {
	for _, locale := range translated {
		for _, kind := range []Kind{KindJoinRequest, KindJoinReminder} {
			data := JoinRequestData{MemberName: "Ann", VisitorName: "Vic Tor", VisitorEmail: "vic@example.com",
				OrganizationName: "Acme", Link: testLink, DecideBy: expires,
				Message: "Hi Ann!\r\n\r\n\r\n\r\nIt's me, <b>Vic</b>.\u202e\x00  \n\n"}
			r := mustRender(t, kind, locale, data)
			if !strings.Contains(r.Text, "Vic Tor (vic@example.com)") {
				t.Errorf("%s/%s: text lacks name and address:\n%s", locale, kind, r.Text)
			}
			if !strings.Contains(r.Text, "\n> Hi Ann!\n>\n> It's me, <b>Vic</b>.\n") {
				t.Errorf("%s/%s: message not quoted in the text:\n%s", locale, kind, r.Text)
			}
			if !strings.Contains(r.HTML, "Hi Ann!<br><br>It&#39;s me, &lt;b&gt;Vic&lt;/b&gt;.</blockquote>") {
				t.Errorf("%s/%s: message not quoted in the HTML:\n%s", locale, kind, r.HTML)
			}
			if strings.ContainsRune(r.Text, '\u202e') || strings.ContainsRune(r.Text, 0) {
				t.Errorf("%s/%s: control characters survived", locale, kind)
			}
			checkLinkOnce(t, r, testLink)

			data.Message = " \r\n "
			r = mustRender(t, kind, locale, data)
			if strings.Contains(r.Text, ">") || strings.Contains(r.HTML, "<blockquote") {
				t.Errorf("%s/%s: empty message quoted:\n%s", locale, kind, r.Text)
			}
		}
	}
	if got := cleanMessage(strings.Repeat("line\n", 100)); len(got) != maxMessageLines || got[len(got)-1] != "line …" {
		t.Errorf("long message: %d lines, last %q", len(got), got[len(got)-1])
	}
	if got := cleanMessage(strings.Repeat("é", 3000)); len([]rune(got[0])) != maxMessageRunes+1 {
		t.Errorf("long line: %d runes", len([]rune(got[0])))
	}
}

func TestJoinAlreadyMemberWithoutLoginURL(t *testing.T) {
	for _, locale := range translated {
		withURL := mustRender(t, KindJoinAlreadyMember, locale, JoinAlreadyMemberData{VisitorName: "Bea", OrganizationName: "Acme", LoginURL: testLink})
		checkLinkOnce(t, withURL, testLink)
		without := mustRender(t, KindJoinAlreadyMember, locale, JoinAlreadyMemberData{VisitorName: "Bea", OrganizationName: "Acme"})
		checkNoLink(t, without)
		if without.Text == withURL.Text {
			t.Errorf("%s: the text does not change without a login URL", locale)
		}
	}
	r := mustRender(t, KindJoinAlreadyMember, "en", JoinAlreadyMemberData{OrganizationName: "Acme"})
	if !strings.Contains(r.Text, "log in as usual") {
		t.Errorf("text:\n%s", r.Text)
	}
	if _, err := Render(KindJoinAlreadyMember, "en", JoinAlreadyMemberData{LoginURL: "javascript:alert(1)"}); err == nil {
		t.Error("javascript login URL accepted")
	}
}

func TestEnglishJoinWording(t *testing.T) {
	r := mustRender(t, KindJoinConfirm, "en", JoinConfirmData{VisitorName: "Vic", MemberName: "Ann", OrganizationName: "Acme", Link: testLink, ExpiresAt: expires})
	for _, want := range []string{"Hi Vic,", "You asked to join Acme on Usher through Ann.", "Nothing is sent to Ann until you confirm.", "If it wasn't you"} {
		if !strings.Contains(r.Text, want) {
			t.Errorf("join_confirm text lacks %q:\n%s", want, r.Text)
		}
	}
	r = mustRender(t, KindJoinRequest, "en", JoinRequestData{MemberName: "Ann", VisitorName: "Vic", VisitorEmail: "vic@example.com", OrganizationName: "Acme", Link: testLink, DecideBy: expires})
	if r.Subject != "Vic wants to join Acme on Usher" || !strings.Contains(r.Text, "Vic (vic@example.com) would like to join Acme on Usher") {
		t.Errorf("join_request: %q\n%s", r.Subject, r.Text)
	}
	if strings.Contains(r.Text, "Their message") {
		t.Error("join_request without a message shows a message heading")
	}
	r = mustRender(t, KindJoinReminder, "en", JoinRequestData{VisitorEmail: "vic@example.com", OrganizationName: "Acme", Link: testLink, DecideBy: expires})
	if r.Subject != "Reminder: vic@example.com is waiting to join Acme" || !strings.Contains(r.Text, "still waiting for your decision") ||
		!strings.Contains(r.Text, "expires on Monday, 4 March 2030 at 16:30 UTC") {
		t.Errorf("join_reminder: %q\n%s", r.Subject, r.Text)
	}
	r = mustRender(t, KindRenewalRequested, "en", RenewalRequestedData{InviterName: "Ann", InviteeName: "Bea", InviteeEmail: "bea@example.com", OrganizationName: "Acme"})
	if r.Subject != "Bea asks for a new invitation to Acme" || !strings.Contains(r.Text, "Bea (bea@example.com) tried to open your invitation") {
		t.Errorf("renewal: %q\n%s", r.Subject, r.Text)
	}
}

func TestLogo(t *testing.T) {
	for _, locale := range translated {
		for _, kind := range Kinds {
			with, _ := sampleData(kind, "Bea", `Acme "&" Co`, testLogo)
			without, _ := sampleData(kind, "Bea", `Acme "&" Co`, "")
			a := mustRender(t, kind, locale, with)
			b := mustRender(t, kind, locale, without)
			img := `<img src="` + htmltemplate.HTMLEscapeString(testLogo) + `" alt="Acme &#34;&amp;&#34; Co"`
			if n := strings.Count(a.HTML, img); n != 1 {
				t.Errorf("%s/%s: %d logos (%s)", locale, kind, n, img)
			}
			if i, j := strings.Index(a.HTML, "<img"), strings.Index(a.HTML, "<p"); i < 0 || i > j {
				t.Errorf("%s/%s: logo not at the top", locale, kind)
			}
			if !strings.Contains(a.HTML, "max-height:48px") {
				t.Errorf("%s/%s: logo height not bounded", locale, kind)
			}
			if a.Text != b.Text || a.Subject != b.Subject {
				t.Errorf("%s/%s: the logo changed the text", locale, kind)
			}
			if strings.Contains(b.HTML, "<img") {
				t.Errorf("%s/%s: logo without a LogoURL", locale, kind)
			}
		}
	}
	for _, bad := range []string{"javascript:alert(1)", "JavaScript:alert(document.cookie)", "data:image/png;base64,AAAA",
		"//cdn.example.com/logo.png", "/logo.png", "https://cdn.example.com/a b.png", "ftp://x.example/logo.png",
		"https://x.example/\"onerror=\"alert(1)\"", " javascript:alert(1)"} {
		r := mustRender(t, KindInvitation, "en", InvitationData{OrganizationName: "Acme", Link: testLink, LogoURL: bad})
		if strings.Contains(r.HTML, "<img") || strings.Contains(strings.ToLower(r.HTML), "javascript") || strings.Contains(r.HTML, "onerror") {
			t.Errorf("LogoURL %q rendered:\n%s", bad, r.HTML)
		}
	}
}

func TestNewKindsErrors(t *testing.T) {
	for _, tt := range []struct {
		kind Kind
		data any
	}{
		{KindJoinConfirm, JoinConfirmData{}},
		{KindJoinRequest, JoinRequestData{Link: "mailto:x@example.com"}},
		{KindJoinReminder, &JoinRequestData{}},
		{KindJoinReminder, JoinConfirmData{Link: testLink}},
		{KindJoinApproved, JoinApprovedData{Link: "/password/x"}},
		{KindJoinRejected, (*JoinRejectedData)(nil)},
		{KindRenewalRequested, InvitationAcceptedData{}},
	} {
		if _, err := Render(tt.kind, "de", tt.data); err == nil {
			t.Errorf("%s with %#v: expected an error", tt.kind, tt.data)
		}
	}
	// Pointers work like values.
	a := mustRender(t, KindJoinRejected, "fr", JoinRejectedData{VisitorName: "Bea", OrganizationName: "Acme"})
	b := mustRender(t, KindJoinRejected, "fr", &JoinRejectedData{VisitorName: "Bea", OrganizationName: "Acme"})
	if a != b {
		t.Error("pointer rendered differently")
	}
}

func TestCleanName(t *testing.T) {
	if got := cleanName("  Eve\u202eexe.txt\u2066 \t\r\nBob  "); got != "Eveexe.txt Bob" {
		t.Errorf("cleanName = %q", got)
	}
	if got := cleanName(strings.Repeat("x", 200)); len([]rune(got)) != maxNameRunes+1 {
		t.Errorf("long name: %d runes", len([]rune(got)))
	}
}

func TestRenderConcurrently(t *testing.T) {
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kind := Kinds[i%len(Kinds)]
			data, _ := sampleData(kind, fmt.Sprint("User", i), "Acme", testLogo)
			if _, err := Render(kind, translated[i%len(translated)], data); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
}

// Subjects and texts read as the language they claim: no English left in
// the translations (a rough check on common English words).
func TestNoEnglishLeftInTranslations(t *testing.T) {
	english := regexp.MustCompile(`\b(?i:the|you|your|request|expires|join|hi|please|already|welcome)\b`)
	for _, locale := range translated[1:] {
		for _, kind := range Kinds {
			data, _ := sampleData(kind, "Bea", "Acme", "")
			r := mustRender(t, kind, locale, data)
			text := strings.NewReplacer(testLink, "", "we met at the conference", "", "Hello Bea", "").Replace(r.Subject + "\n" + r.Text)
			if m := english.FindString(text); m != "" {
				t.Errorf("%s/%s: English %q in:\n%s", locale, kind, m, text)
			}
			if locale == "ru" && !unicode.Is(unicode.Cyrillic, []rune(r.Text)[0]) {
				t.Errorf("ru/%s text does not start in Russian:\n%s", kind, r.Text)
			}
		}
	}
}
