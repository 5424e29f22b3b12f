package e2e

import (
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// The hosted pages, driven like a browser without JavaScript would: net/http with a cookie
// jar, GET to look, POST of the page's own form (with its CSRF token) to act.

// pageClient is one visitor's browser.
type pageClient struct {
	t      testing.TB
	client *http.Client
	lang   string
}

func newPageClient(t testing.TB, lang string) *pageClient {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &pageClient{t: t, lang: lang, client: &http.Client{
		Jar: jar, Timeout: 90 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// webPage is a page as the browser got it.
type webPage struct {
	Status int
	Header http.Header
	// HTML is the body as sent; Text is it with entities decoded, for looking for words.
	HTML string
	Text string
}

var (
	pageCSRF   = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	pageLang   = regexp.MustCompile(`<html lang="([a-z]+)"`)
	emailLinks = regexp.MustCompile(regexp.QuoteMeta(publicURL) + `/[^\s"'<>()]+`)
)

func (r webPage) csrf(t testing.TB) string {
	t.Helper()
	m := pageCSRF.FindStringSubmatch(r.HTML)
	if m == nil {
		t.Fatalf("the page has no form with a CSRF token:\n%s", r.HTML)
	}
	return m[1]
}

func (r webPage) lang() string {
	if m := pageLang.FindStringSubmatch(r.HTML); m != nil {
		return m[1]
	}
	return ""
}

func (r webPage) has(t testing.TB, texts ...string) {
	t.Helper()
	for _, s := range texts {
		if !strings.Contains(r.Text, s) {
			t.Fatalf("the page (%d) does not say %q:\n%s", r.Status, s, r.Text)
		}
	}
}

// pagePath turns a link from an e-mail into a path on the test server.
func pagePath(link string) string { return strings.TrimPrefix(link, publicURL) }

func (pc *pageClient) do(method, path string, form url.Values, headers ...string) webPage {
	pc.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, env.api.URL+pagePath(path), body)
	if err != nil {
		pc.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if pc.lang != "" {
		req.Header.Set("Accept-Language", pc.lang)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := pc.client.Do(req)
	if err != nil {
		pc.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		pc.t.Fatal(err)
	}
	if res.StatusCode >= 500 && res.StatusCode != http.StatusServiceUnavailable {
		pc.t.Errorf("%s %s answered %d:\n%s", method, path, res.StatusCode, raw)
	}
	return webPage{Status: res.StatusCode, Header: res.Header, HTML: string(raw), Text: html.UnescapeString(string(raw))}
}

func (pc *pageClient) get(path string) webPage { pc.t.Helper(); return pc.do("GET", path, nil) }

// submit posts fields to action as the form of page from would, CSRF token included.
func (pc *pageClient) submit(from webPage, action string, fields url.Values) webPage {
	pc.t.Helper()
	form := url.Values{"csrf_token": {from.csrf(pc.t)}}
	for k, v := range fields {
		form[k] = v
	}
	return pc.do("POST", action, form)
}

func expectPage(t testing.TB, p webPage, status int) {
	t.Helper()
	if p.Status != status {
		t.Fatalf("got %d, want %d:\n%s", p.Status, status, p.Text)
	}
}

// invitationToken invites someone and returns the invitation's ID and its link's token.
func invitationToken(t testing.TB, body map[string]any) (id, token string) {
	t.Helper()
	id = invite(t, body).str("id")
	email, _ := body["email"].(string)
	return id, tokenIn(t, waitForMail(t, email, "invitation", 1)[0], "invite")
}

func invitationStatus(t testing.TB, id string) string {
	t.Helper()
	var status string
	if err := env.db.DB.Get(&status, "SELECT status FROM invitations WHERE id = ?", id); err != nil {
		t.Fatal(err)
	}
	return status
}

const pagesCSP = "default-src 'none'; style-src 'self'; img-src 'self' https:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func checkPageHeaders(t testing.TB, p webPage) {
	t.Helper()
	for header, want := range map[string]string{
		"Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
		"Content-Security-Policy": pagesCSP, "X-Frame-Options": "DENY",
	} {
		if got := p.Header.Get(header); got != want {
			t.Errorf("%s: %q, want %q", header, got, want)
		}
	}
	if ct := p.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	// Nothing on a page is loaded from elsewhere: no scripts at all, and every src and
	// stylesheet is on this site (an organization's logo, with no referrer, is the one
	// exception, and the test organizations have none).
	if strings.Contains(p.HTML, "<script") {
		t.Error("the page has a script")
	}
	for _, m := range regexp.MustCompile(`(?:src|href)="([^"]*)"`).FindAllStringSubmatch(p.HTML, -1) {
		if !strings.HasPrefix(m[1], "/") && !strings.HasPrefix(m[1], "#") {
			t.Errorf("the page refers to %q, off the site", m[1])
		}
	}
}

func TestPagesInvitationAcceptedAsNewUser(t *testing.T) {
	org := createOrganization(t, "Pages & Co", nil)
	inviterID, _ := createMember(t, org, "Ines Inviter")
	email := uniqueEmail(t, "pages-new")
	id, token := invitationToken(t, map[string]any{
		"email": email, "name": "Pia Pages", "organization_id": org, "role": "admin", "inviter_id": inviterID, "expires_in": "72h",
	})

	browser := newPageClient(t, "en-GB,en;q=0.9")
	page := browser.get("/invite/" + token)
	expectPage(t, page, http.StatusOK)
	checkPageHeaders(t, page)
	page.has(t, "Join Pages & Co", "Ines Inviter invited you to join Pages & Co as an administrator.", "This invitation expires on",
		`value="Pia Pages"`, "At least 10 characters", "Accept the invitation")
	if page.lang() != "en" {
		t.Errorf("lang %q", page.lang())
	}
	if strings.Contains(page.Text, email) {
		t.Error("the page shows the whole invited address; a forwarded link would leak it")
	}
	cookie := page.Header.Get("Set-Cookie")
	if !strings.Contains(cookie, "usher_csrf=") || !strings.Contains(cookie, "HttpOnly") || !strings.Contains(cookie, "SameSite=Strict") {
		t.Errorf("CSRF cookie: %s", cookie)
	}

	// Mistakes re-render the form, keeping what was typed, and change nothing.
	mismatch := browser.submit(page, "/invite/"+token, url.Values{"name": {"Pia P."}, "password": {"correct horse battery"}, "password_repeat": {"correct horse battery!"}})
	expectPage(t, mismatch, http.StatusBadRequest)
	mismatch.has(t, `role="alert"`, "The two passwords are not the same", `value="Pia P."`)
	weak := browser.submit(mismatch, "/invite/"+token, url.Values{"name": {"Pia P."}, "password": {"short"}, "password_repeat": {"short"}})
	expectPage(t, weak, http.StatusUnprocessableEntity)
	weak.has(t, `role="alert"`, "Please choose a stronger password", `value="Pia P."`, `aria-invalid="true"`)
	if s := invitationStatus(t, id); s != "pending" {
		t.Fatalf("status after refused forms: %s", s)
	}

	accepted := browser.submit(weak, "/invite/"+token, url.Values{"name": {"Pia P."}, "password": {"correct horse battery"}, "password_repeat": {"correct horse battery"}})
	expectPage(t, accepted, http.StatusSeeOther)
	if loc := accepted.Header.Get("Location"); loc != "/welcome" {
		t.Fatalf("redirected to %q", loc)
	}
	welcome := browser.get("/welcome")
	expectPage(t, welcome, http.StatusOK)
	welcome.has(t, "You are now a member of Pages & Co.")
	if strings.Contains(welcome.Text, "We've sent you an e-mail") {
		t.Error("the welcome page promises a set-password e-mail to someone who chose a password")
	}

	waitForStatus(t, id, "accepted")
	var user struct {
		Name        string `db:"name"`
		HasPassword bool   `db:"has_password"`
	}
	if err := env.db.DB.Get(&user, "SELECT name, password_hash IS NOT NULL AS has_password FROM users WHERE email = ?", email); err != nil {
		t.Fatal(err)
	}
	if user.Name != "Pia P." || !user.HasPassword {
		t.Fatalf("user %+v", user)
	}
	if n := countRows(t, "SELECT COUNT(*) FROM memberships m JOIN users u ON u.id = m.user_id WHERE u.email = ? AND m.organization_id = ? AND m.role = 'admin'", email, org); n != 1 {
		t.Fatalf("%d memberships", n)
	}

	// The link is spent: the page says so (and offers no form).
	again := newPageClient(t, "").get("/invite/" + token)
	expectPage(t, again, http.StatusConflict)
	again.has(t, "This invitation was already accepted")
	if pageCSRF.MatchString(again.HTML) {
		t.Error("a used invitation's page still has a form")
	}
}

func TestPagesInvitationWithoutPasswordSendsPasswordLink(t *testing.T) {
	org := createOrganization(t, "Pages Later Org", map[string]any{"login_url": "https://later.example.com/login"})
	email := uniqueEmail(t, "pages-later")
	id, token := invitationToken(t, map[string]any{"email": email, "name": "Lou Later", "organization_id": org})
	browser := newPageClient(t, "")
	page := browser.get("/invite/" + token)
	page.has(t, "You're invited to join Pages Later Org as")
	accepted := browser.submit(page, "/invite/"+token, url.Values{"name": {"Lou Later"}})
	expectPage(t, accepted, http.StatusSeeOther)
	browser.get("/welcome").has(t, "You are now a member of Pages Later Org.", "We've sent you an e-mail with a link to choose your password.")
	waitForStatus(t, id, "accepted")

	link := linkPattern.FindString(waitForMail(t, email, "set_password", 1)[0].Text)
	passwordPage := browser.get(link)
	expectPage(t, passwordPage, http.StatusOK)
	checkPageHeaders(t, passwordPage)
	passwordPage.has(t, "Choose your password", "At least 10 characters")
	weak := browser.submit(passwordPage, link, url.Values{"password": {"aaaaaaaaaaaa"}, "password_repeat": {"aaaaaaaaaaaa"}})
	expectPage(t, weak, http.StatusUnprocessableEntity)
	weak.has(t, `role="alert"`)
	done := browser.submit(weak, link, url.Values{"password": {"a long and good one"}, "password_repeat": {"a long and good one"}})
	expectPage(t, done, http.StatusOK)
	done.has(t, "Your password is set")
	if n := countRows(t, "SELECT COUNT(*) FROM users WHERE email = ? AND password_hash IS NOT NULL", email); n != 1 {
		t.Fatal("the password was not stored")
	}
	spent := browser.submit(passwordPage, link, url.Values{"password": {"yet another password"}, "password_repeat": {"yet another password"}})
	expectPage(t, spent, http.StatusNotFound)
	spent.has(t, "This link doesn't work any more")
}

func TestPagesInvitationForExistingAccount(t *testing.T) {
	home := createOrganization(t, "Pages Home", nil)
	org := createOrganization(t, "Pages Second", map[string]any{"login_url": "http://127.0.0.1:9/login"})
	userID, email := createMember(t, home, "Eve Existing")
	id, token := invitationToken(t, map[string]any{"email": email, "organization_id": org})
	browser := newPageClient(t, "")
	page := browser.get("/invite/" + token)
	page.has(t, "You already have an account", "Accept the invitation")
	if strings.Contains(page.HTML, `name="password"`) || strings.Contains(page.HTML, `name="name"`) {
		t.Fatal("the form asks an existing account for a name or a password")
	}
	// Accepting ends on the organization's login page, so the CSP lets the form go there.
	if csp := page.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' http://127.0.0.1:9;") {
		t.Fatalf("CSP %q does not allow the redirect after the form", csp)
	}
	accepted := browser.submit(page, "/invite/"+token, nil)
	expectPage(t, accepted, http.StatusSeeOther)
	if loc := accepted.Header.Get("Location"); loc != "http://127.0.0.1:9/login" {
		t.Fatalf("redirected to %q", loc)
	}
	if got := waitForStatus(t, id, "accepted").str("user_id"); got != userID {
		t.Fatalf("accepted for %s, want %s", got, userID)
	}
}

func TestPagesRefuseFormsWithoutCSRFToken(t *testing.T) {
	org := createOrganization(t, "Pages CSRF Org", nil)
	email := uniqueEmail(t, "pages-csrf")
	id, token := invitationToken(t, map[string]any{"email": email, "name": "Cy", "organization_id": org})
	browser := newPageClient(t, "")
	page := browser.get("/invite/" + token)
	good := page.csrf(t)
	fields := url.Values{"name": {"Cy"}, "password": {"correct horse battery"}, "password_repeat": {"correct horse battery"}}
	with := func(csrf string) url.Values {
		v := url.Values{}
		for k, vs := range fields {
			v[k] = vs
		}
		if csrf != "" {
			v.Set("csrf_token", csrf)
		}
		return v
	}

	for name, attempt := range map[string]func() webPage{
		"no token":        func() webPage { return browser.do("POST", "/invite/"+token, with("")) },
		"wrong token":     func() webPage { return browser.do("POST", "/invite/"+token, with(good[:len(good)-2]+"AA")) },
		"token as cookie": func() webPage { return browser.do("POST", "/invite/"+token, with("x"), "Cookie", "usher_csrf="+good) },
		"no cookie":       func() webPage { return newPageClient(t, "").do("POST", "/invite/"+token, with(good)) },
		"other browser's": func() webPage {
			other := newPageClient(t, "")
			other.get("/invite/" + token)
			return other.do("POST", "/invite/"+token, with(good))
		},
		"cross-site": func() webPage {
			return browser.do("POST", "/invite/"+token, with(good), "Sec-Fetch-Site", "cross-site")
		},
		"other origin": func() webPage {
			return browser.do("POST", "/invite/"+token, with(good), "Origin", "https://evil.example")
		},
		"renewal without token": func() webPage { return browser.do("POST", "/invite/"+token+"/renewal", url.Values{}) },
		"join search without token": func() webPage {
			return browser.do("POST", "/join", url.Values{"email": {"someone@example.com"}})
		},
	} {
		refused := attempt()
		if refused.Status != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, refused.Status)
			continue
		}
		refused.has(t, "Please reload the page and try again")
	}
	time.Sleep(200 * time.Millisecond)
	if s := invitationStatus(t, id); s != "pending" {
		t.Fatalf("a refused form changed the invitation: %s", s)
	}
	if n := countRows(t, "SELECT COUNT(*) FROM users WHERE email = ?", email); n != 0 {
		t.Fatal("a refused form created the account")
	}
	// The page's own form still works.
	expectPage(t, browser.submit(page, "/invite/"+token, fields), http.StatusSeeOther)
	waitForStatus(t, id, "accepted")
}

func TestPagesExpiredLink(t *testing.T) {
	org := createOrganization(t, "Pages Expiry Org", nil)
	inviterID, _ := createMember(t, org, "Olga Owner")
	email := uniqueEmail(t, "pages-expired")
	id, token := invitationToken(t, map[string]any{"email": email, "organization_id": org, "inviter_id": inviterID, "expires_in": "2s"})
	waitForStatus(t, id, "expired")

	browser := newPageClient(t, "")
	page := browser.get("/invite/" + token)
	expectPage(t, page, http.StatusGone)
	checkPageHeaders(t, page)
	page.has(t, "This invitation has expired", "ask Olga Owner for a new invitation", "Ask for a new invitation")
	if strings.Contains(page.HTML, `name="password"`) {
		t.Fatal("an expired invitation's page offers the accept form")
	}
	asked := browser.submit(page, "/invite/"+token+"/renewal", nil)
	expectPage(t, asked, http.StatusOK)
	asked.has(t, "We asked for a new invitation", "We let Olga Owner know")
	if s := invitationStatus(t, id); s != "expired" {
		t.Fatalf("asking changed the invitation to %s", s)
	}

	// Accepting anyway (a form rendered before it expired) explains instead.
	late := browser.do("POST", "/invite/"+token, url.Values{"csrf_token": {page.csrf(t)}, "name": {"Late"}})
	expectPage(t, late, http.StatusGone)
	late.has(t, "This invitation has expired")
}

func TestPagesReplacedAndUnknownLinks(t *testing.T) {
	org := createOrganization(t, "Pages Resend Org", nil)
	email := uniqueEmail(t, "pages-replaced")
	id, first := invitationToken(t, map[string]any{"email": email, "organization_id": org})
	expect(t, call(t, "POST", "/v1/invitations/"+id+"/resend", nil), http.StatusOK, "")
	second := tokenIn(t, waitForMail(t, email, "invitation", 2)[1], "invite")

	browser := newPageClient(t, "")
	old := browser.get("/invite/" + first)
	expectPage(t, old, http.StatusNotFound)
	old.has(t, "There is a newer e-mail for this invitation", "most recent invitation e-mail")
	expectPage(t, browser.get("/invite/"+second), http.StatusOK)

	for _, path := range []string{"/invite/" + strings.Repeat("A", 43), "/invite/short", "/invite/%3Cscript%3E"} {
		unknown := browser.get(path)
		expectPage(t, unknown, http.StatusNotFound)
		unknown.has(t, "This link doesn't work")
		checkPageHeaders(t, unknown)
	}
	expectPage(t, browser.get("/password/nonsense"), http.StatusNotFound)
	expectPage(t, browser.get("/join/confirm/"+strings.Repeat("B", 43)), http.StatusNotFound)
	expectPage(t, browser.get("/join-requests/"+strings.Repeat("C", 43)), http.StatusNotFound)
	expectPage(t, browser.get("/join/not-a-member"), http.StatusNotFound)
}

func TestPagesInRussian(t *testing.T) {
	ru := newPageClient(t, "ru-RU,ru;q=0.9,en;q=0.5")
	search := ru.get("/join")
	expectPage(t, search, http.StatusOK)
	if search.lang() != "ru" {
		t.Fatalf("lang %q", search.lang())
	}
	search.has(t, "Найти участника", "Адрес эл. почты участника")
	unknown := ru.get("/invite/" + strings.Repeat("A", 43))
	if unknown.lang() != "ru" {
		t.Fatalf("lang %q", unknown.lang())
	}
	unknown.has(t, "Ссылка не работает")
	refused := ru.do("POST", "/join", url.Values{"email": {"x@example.com"}})
	expectPage(t, refused, http.StatusForbidden)
	refused.has(t, "Обновите страницу и попробуйте снова")

	// An invitation speaks its own language, whatever the browser prefers.
	org := createOrganization(t, "Страницы", nil)
	email := uniqueEmail(t, "pages-ru")
	_, token := invitationToken(t, map[string]any{"email": email, "name": "Иван", "organization_id": org, "locale": "ru", "role": "member"})
	page := newPageClient(t, "de-DE,de;q=0.9").get("/invite/" + token)
	if page.lang() != "ru" {
		t.Fatalf("lang %q", page.lang())
	}
	page.has(t, "Приглашение в «Страницы»", "в роли «участник»", "Принять приглашение", "Приглашение действует до")
	// Without a locale of its own, a page follows the browser; without either, English.
	if de := newPageClient(t, "de").get("/join"); de.lang() != "de" || !strings.Contains(de.Text, "Mitglied finden") {
		t.Fatalf("German: %s", de.Text)
	}
	if en := newPageClient(t, "").get("/join"); en.lang() != "en" {
		t.Fatalf("no Accept-Language: %s", en.lang())
	}
}

func TestPagesStaticStylesheet(t *testing.T) {
	page := newPageClient(t, "").get("/join")
	css := regexp.MustCompile(`href="(/static/usher\.css\?v=[0-9a-f]+)"`).FindStringSubmatch(page.HTML)
	if css == nil {
		t.Fatalf("no stylesheet link:\n%s", page.HTML)
	}
	res, err := http.Get(env.api.URL + html.UnescapeString(css[1]))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/css") ||
		!strings.Contains(res.Header.Get("Cache-Control"), "max-age=31536000") {
		t.Fatalf("stylesheet: %d %v", res.StatusCode, res.Header)
	}
}

// joinScenario is a public member, for the join pages.
type joinScenario struct {
	org, memberID, memberEmail string
}

func newJoinScenario(t *testing.T, orgName, memberName, display string) joinScenario {
	t.Helper()
	org := createOrganization(t, orgName, nil)
	memberID, memberEmail := createMember(t, org, memberName)
	publishProfile(t, memberID, org, display)
	return joinScenario{org: org, memberID: memberID, memberEmail: memberEmail}
}

func TestPagesJoinJourney(t *testing.T) {
	sc := newJoinScenario(t, "Pages Guild", "Maria Member", "Maria M.")
	visitor := newPageClient(t, "")

	search := visitor.get("/join")
	expectPage(t, search, http.StatusOK)
	checkPageHeaders(t, search)
	none := visitor.submit(search, "/join", url.Values{"email": {uniqueEmail(t, "nobody")}})
	expectPage(t, none, http.StatusOK)
	none.has(t, "No public member has that address.")
	found := visitor.submit(none, "/join", url.Values{"email": {sc.memberEmail}})
	expectPage(t, found, http.StatusOK)
	found.has(t, "Maria M.", "Pages Guild", "Lisbon", "Happy to vouch", `href="/join/`+sc.memberID+`"`, "Request an invitation")
	if strings.Contains(found.Text, "Maria Member") {
		t.Error("the search shows the member's account name, not their public display name")
	}

	form := visitor.get("/join/" + sc.memberID)
	expectPage(t, form, http.StatusOK)
	form.has(t, "Ask Maria M. for an invitation")
	email := uniqueEmail(t, "pages-visitor")
	missing := visitor.submit(form, "/join/"+sc.memberID, url.Values{"name": {""}, "email": {email}})
	expectPage(t, missing, http.StatusBadRequest)
	missing.has(t, "Please enter your name.", `value="`+email+`"`)
	sent := visitor.submit(missing, "/join/"+sc.memberID, url.Values{"name": {"Vic Visitor"}, "email": {email}, "message": {"We met at the\nmeetup."}})
	expectPage(t, sent, http.StatusOK)
	sent.has(t, "Check your e-mail", email)

	confirmLink := linkPattern.FindString(waitForMail(t, email, "join_confirm", 1)[0].Text)
	confirm := visitor.get(confirmLink)
	expectPage(t, confirm, http.StatusOK)
	checkPageHeaders(t, confirm)
	confirm.has(t, "Confirm your request", "Send this request to Maria M. of Pages Guild?", "Vic Visitor", "We met at the\nmeetup.")
	time.Sleep(300 * time.Millisecond)
	if n := len(mailTo(sc.memberEmail, "join_request")); n != 0 {
		t.Fatal("looking at the confirmation page sent the request")
	}
	confirmed := visitor.submit(confirm, confirmLink, nil)
	expectPage(t, confirmed, http.StatusOK)
	confirmed.has(t, "Your request was sent to Maria M.")
	visitor.get(confirmLink).has(t, "You already confirmed this request")

	member := newPageClient(t, "")
	decideLink := linkPattern.FindString(waitForMail(t, sc.memberEmail, "join_request", 1)[0].Text)
	decide := member.get(decideLink)
	expectPage(t, decide, http.StatusOK)
	checkPageHeaders(t, decide)
	decide.has(t, "A request to join Pages Guild", "Vic Visitor", email, "We met at the\nmeetup.", "Approve", "Reject",
		`<option value="member" selected>`)
	bad := member.submit(decide, decideLink, url.Values{"decision": {"approve"}, "role": {"emperor"}})
	expectPage(t, bad, http.StatusBadRequest)
	approved := member.submit(bad, decideLink, url.Values{"decision": {"approve"}, "role": {"admin"}})
	expectPage(t, approved, http.StatusOK)
	approved.has(t, "Request approved", "Vic Visitor is now a member of Pages Guild as an administrator")
	again := member.submit(decide, decideLink, url.Values{"decision": {"reject"}, "role": {"member"}})
	expectPage(t, again, http.StatusOK)
	again.has(t, "This request was already answered", "was approved")
	member.get(decideLink).has(t, "This request was already answered")
}

func TestPagesJoinRequestSaysTheSameWhateverTheAddress(t *testing.T) {
	sc := newJoinScenario(t, "Pages Circle", "Mo Member", "Mo")
	_, colleague := createMember(t, sc.org, "Colleague")
	pages := map[string]string{}
	for who, email := range map[string]string{"stranger": uniqueEmail(t, "pages-stranger"), "member already": colleague} {
		visitor := newPageClient(t, "")
		form := visitor.get("/join/" + sc.memberID)
		sent := visitor.submit(form, "/join/"+sc.memberID, url.Values{"name": {"Sam"}, "email": {email}})
		expectPage(t, sent, http.StatusOK)
		pages[who] = strings.ReplaceAll(sent.HTML, email, "EMAIL")
	}
	a, b := pages["stranger"], pages["member already"]
	if strip := regexp.MustCompile(`value="[^"]*"`); strip.ReplaceAllString(a, "") != strip.ReplaceAllString(b, "") {
		t.Fatalf("the page differs for an address that already has access:\n%s\n---\n%s", a, b)
	}
}

// Anything that opens links without a person (mail scanners, link previews, prefetching)
// must not accept, confirm, decide or spend anything: GET and HEAD of every link of every
// e-mail the run sent change nothing, and the links still work afterwards. Keep this test
// last in the file, so it sees the e-mails of the tests before it.
func TestPagesGetOfEveryEmailLinkChangesNothing(t *testing.T) {
	// Fresh links of every kind, still usable: an invitation, a set-password link, and a
	// join request's confirmation and decision links.
	org := createOrganization(t, "Pages Scanner Org", nil)
	inviteEmail := uniqueEmail(t, "pages-scan")
	invID, inviteToken := invitationToken(t, map[string]any{"email": inviteEmail, "name": "Sid", "organization_id": org})

	pwEmail := uniqueEmail(t, "pages-scan-pw")
	pwID, pwToken := invitationToken(t, map[string]any{"email": pwEmail, "name": "Pat", "organization_id": org})
	expect(t, call(t, "POST", "/v1/public/invitations/accept", map[string]any{"token": pwToken}, withoutKey), http.StatusOK, "")
	waitForStatus(t, pwID, "accepted")
	passwordLink := linkPattern.FindString(waitForMail(t, pwEmail, "set_password", 1)[0].Text)

	sc := newJoinScenario(t, "Pages Scanner Guild", "Gil Member", "Gil")
	visitor := newPageClient(t, "")
	askToJoin := func(name string) (email, confirmLink string) {
		email = uniqueEmail(t, "pages-scan-join")
		form := visitor.get("/join/" + sc.memberID)
		visitor.submit(form, "/join/"+sc.memberID, url.Values{"name": {name}, "email": {email}}).has(t, "Check your e-mail")
		return email, linkPattern.FindString(waitForMail(t, email, "join_confirm", 1)[0].Text)
	}
	_, confirmLink := askToJoin("Jo")
	visitor.submit(visitor.get(confirmLink), confirmLink, nil).has(t, "Your request was sent to Gil")
	decideLink := linkPattern.FindString(waitForMail(t, sc.memberEmail, "join_request", 1)[0].Text)
	_, unconfirmedLink := askToJoin("Jay")

	links := map[string]bool{}
	for _, m := range env.mailgun.Messages() {
		for _, part := range []string{m.Text, m.HTML} {
			for _, link := range emailLinks.FindAllString(part, -1) {
				links[html.UnescapeString(strings.TrimRight(link, ".,;"))] = true
			}
		}
	}
	for _, must := range []string{"/invite/" + inviteToken, passwordLink, confirmLink, decideLink, unconfirmedLink} {
		if !links[publicURL+pagePath(must)] {
			t.Fatalf("the e-mails' links lack %s", must)
		}
	}

	settle(t)
	before := snapshotState(t)
	scanner := newPageClient(t, "")
	statuses := map[int]int{}
	for link := range links {
		for _, method := range []string{"GET", "HEAD"} {
			p := scanner.do(method, link, nil)
			statuses[p.Status]++
			if method == "GET" && p.Status < 500 && !strings.HasPrefix(p.Header.Get("Content-Type"), "text/html") {
				t.Errorf("GET %s: %d %s", link, p.Status, p.Header.Get("Content-Type"))
			}
			if method == "HEAD" && p.HTML != "" {
				t.Errorf("HEAD %s has a body", link)
			}
		}
	}
	time.Sleep(time.Second) // anything a GET might have started would show by now
	after := snapshotState(t)
	if diff := diffState(before, after); diff != "" {
		t.Fatalf("opening %d links changed the database:\n%s", len(links), diff)
	}
	t.Logf("fetched %d links from %d e-mails: %v", len(links), len(env.mailgun.Messages()), statuses)

	// The links still do what they are for.
	person := newPageClient(t, "")
	page := person.get("/invite/" + inviteToken)
	expectPage(t, page, http.StatusOK)
	expectPage(t, person.submit(page, "/invite/"+inviteToken, url.Values{"name": {"Sid"}}), http.StatusSeeOther)
	waitForStatus(t, invID, "accepted")

	pw := person.get(passwordLink)
	expectPage(t, person.submit(pw, passwordLink, url.Values{"password": {"scanned but fine"}, "password_repeat": {"scanned but fine"}}), http.StatusOK)

	confirm := person.get(unconfirmedLink)
	person.submit(confirm, unconfirmedLink, nil).has(t, "Your request was sent to Gil")

	decide := person.get(decideLink)
	person.submit(decide, decideLink, url.Values{"decision": {"reject"}, "role": {"member"}}).has(t, "Request rejected")
}

// settle waits until the workflows of earlier tests stop changing the database.
func settle(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	prev := snapshotState(t)
	for time.Now().Before(deadline) {
		time.Sleep(time.Second)
		cur := snapshotState(t)
		if diffState(prev, cur) == "" {
			return
		}
		prev = cur
	}
	t.Log("the database kept changing; comparing anyway")
}

// snapshotState is every row a link could change: invitations, their tokens and events,
// accounts, memberships, staged passwords, password links, join requests and their tokens.
func snapshotState(t testing.TB) map[string]string {
	t.Helper()
	queries := map[string]string{
		"invitations":            "SELECT id, status, user_id, accepted_at, revoked_at, expires_at, current_delivery_key, updated_at FROM invitations",
		"invitation_tokens":      "SELECT * FROM invitation_tokens",
		"invitation_events":      "SELECT id, invitation_id, action FROM invitation_events",
		"users":                  "SELECT id, email, name, password_hash, updated_at FROM users",
		"memberships":            "SELECT * FROM memberships",
		"acceptance_credentials": "SELECT attempt_id FROM acceptance_credentials",
		"password_tokens":        "SELECT * FROM password_tokens",
		"join_requests":          "SELECT id, status, role, user_id, confirmed_at, decided_at, updated_at FROM join_requests",
		"join_request_tokens":    "SELECT * FROM join_request_tokens",
		"join_request_events":    "SELECT id, join_request_id, action FROM join_request_events",
	}
	out := map[string]string{}
	for table, q := range queries {
		rows, err := env.db.DB.QueryxContext(context.Background(), q)
		if err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		for rows.Next() {
			cols, err := rows.SliceScan()
			if err != nil {
				t.Fatal(err)
			}
			parts := make([]string, len(cols))
			for i, c := range cols {
				if b, ok := c.([]byte); ok {
					parts[i] = fmt.Sprintf("%x", b)
				} else {
					parts[i] = fmt.Sprint(c)
				}
			}
			out[table+"|"+parts[0]] = strings.Join(parts, " ")
		}
		rows.Close()
	}
	return out
}

func diffState(before, after map[string]string) string {
	var lines []string
	for k, v := range before {
		if w, ok := after[k]; !ok {
			lines = append(lines, "gone:    "+v)
		} else if w != v {
			lines = append(lines, "changed: "+v+"\n      -> "+w)
		}
	}
	for k, v := range after {
		if _, ok := before[k]; !ok {
			lines = append(lines, "new:     "+k+" "+v)
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// The set-password page says at once that a used link is spent, before anyone types.
func TestPagesSpentPasswordLinkIsSaidAtOnce(t *testing.T) {
	org := createOrganization(t, "Spent Org", nil)
	email := uniqueEmail(t, "spent")
	invite(t, map[string]any{"email": email, "organization_id": org})
	token := tokenIn(t, waitForMail(t, email, "invitation", 1)[0], "invite")
	expect(t, call(t, "POST", "/v1/public/invitations/accept", map[string]any{"token": token}, withoutKey), http.StatusOK, "")
	passwordToken := tokenIn(t, waitForMail(t, email, "set_password", 1)[0], "password")

	get := func() int {
		res, err := http.Get(env.api.URL + "/password/" + passwordToken)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if status := get(); status != http.StatusOK {
		t.Fatalf("fresh link: %d", status)
	}
	expect(t, call(t, "POST", "/v1/public/password", map[string]any{"token": passwordToken, "password": "a good long password"}, withoutKey), http.StatusOK, "")
	if status := get(); status != http.StatusNotFound {
		t.Fatalf("spent link: %d", status)
	}
}
