package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// The hosted pages in a real browser: Debian's Chromium, headless, driven by chromedp the
// way a person would use them (type into the fields, press the buttons, read the page).
// Without Chromium the tests skip, except in CI (CI=true), where they fail: .ci/run
// installs it. Screenshots go to $USHER_SCREENSHOTS_DIR if set, else to the test's
// artifact directory (kept with go test -artifacts).

// browser is one headless Chromium with a tab, for one test.
type browser struct {
	t    *testing.T
	ctx  context.Context
	dir  string
	lang string

	mu       sync.Mutex
	messages []string // what the browser logged (CSP violations land here)
}

func chromiumPath() string {
	if p := os.Getenv("USHER_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome-stable", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// startBrowser starts Chromium with a fresh profile; lang, if set, is the browser's
// language (the UI's and every request's Accept-Language).
func startBrowser(t *testing.T, lang string) *browser {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("Chromium is not installed; the browser tests need it in CI (.ci/run installs the chromium package)")
		}
		t.Skip("Chromium is not installed (apt-get install chromium); skipping the browser test")
	}
	profile, err := os.MkdirTemp("", "usher-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1024, 800),
	}
	if lang != "" {
		opts = append(opts, chromedp.Flag("lang", lang))
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
		os.RemoveAll(profile)
	})
	// The first call starts the browser and binds its life to ctx, so it has no deadline;
	// each later step gets its own (see do).
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	b := &browser{t: t, ctx: ctx, dir: screenshotDir(t), lang: lang}

	logged := chromedp.Events(ctx, cdplog.EntryAdded)
	go func() {
		for ev, err := range logged {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.messages = append(b.messages, fmt.Sprintf("%s %s: %s", ev.Entry.Level, ev.Entry.Source, ev.Entry.Text))
			b.mu.Unlock()
		}
	}()
	b.call(func(ctx context.Context) error { _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); return err })
	b.call(func(ctx context.Context) error {
		_, err := chromedp.Call(ctx, network.Enable, network.EnableParams{})
		return err
	})
	b.call(b.setLanguage)
	return b
}

// setLanguage makes the tab of ctx send the browser's language: --lang sets the UI's, and
// headless Chromium does not always derive Accept-Language from it.
func (b *browser) setLanguage(ctx context.Context) error {
	if b.lang == "" {
		return nil
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		return err
	}
	_, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders,
		network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Accept-Language": b.lang}})
	return err
}

// phoneShot saves a screenshot of a page (GET only) as a phone shows it, 390×844 CSS
// pixels at twice the density, in a tab of its own so the main tab keeps its size.
func (b *browser) phoneShot(link, name string) {
	b.t.Helper()
	tab, cancel := chromedp.NewContext(b.ctx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(tab, 30*time.Second)
	defer cancelTimeout()
	if err := chromedp.Do(ctx); err != nil {
		b.t.Fatal(err)
	}
	if err := b.setLanguage(ctx); err != nil {
		b.t.Fatal(err)
	}
	png, err := chromedp.Run(ctx, func(ctx context.Context, t *chromedp.Target) ([]byte, error) {
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)),
			chromedp.Navigate(env.api.URL+pagePath(link))); err != nil {
			return nil, err
		}
		return chromedp.Run(ctx, chromedp.FullScreenshot(100))
	})
	if err != nil {
		b.t.Fatal(err)
	}
	file := filepath.Join(b.dir, name+".png")
	if err := os.WriteFile(file, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s", file)
}

func screenshotDir(t *testing.T) string {
	if dir := os.Getenv("USHER_SCREENSHOTS_DIR"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	return t.ArtifactDir()
}

func (b *browser) call(f func(ctx context.Context) error) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := f(ctx); err != nil {
		b.t.Fatal(err)
	}
}

// do runs steps with a deadline.
func (b *browser) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	b.call(func(ctx context.Context) error { return chromedp.Do(ctx, steps...) })
}

// value runs one action that returns a value.
func value[T any](b *browser, a chromedp.Action[T]) T {
	b.t.Helper()
	var v T
	b.call(func(ctx context.Context) (err error) { v, err = chromedp.Run(ctx, a); return err })
	return v
}

// open loads a page (a path, or a link from an e-mail) and returns its HTTP status.
func (b *browser) open(link string) int64 {
	b.t.Helper()
	res := value(b, chromedp.NavigateResponse(env.api.URL+pagePath(link)))
	return res.Status
}

// press does something that leads to another page (clicks a button, presses Enter) and
// waits for it; it returns the new page's HTTP status.
func (b *browser) press(steps ...chromedp.Action[chromedp.Void]) int64 {
	b.t.Helper()
	var res *network.Response
	b.call(func(ctx context.Context) (err error) { res, err = chromedp.RunResponse(ctx, steps...); return err })
	return res.Status
}

// click presses the button (or link) that sel finds.
func (b *browser) click(sel string) int64 {
	b.t.Helper()
	return b.press(chromedp.Click(chromedp.CSS(sel)))
}

// typeInto types text into the field with this id, as a person would, replacing what it held.
// (The field is emptied with a script: chromedp v0.22.1's SetValue refuses "".)
func (b *browser) typeInto(id, text string) {
	b.t.Helper()
	b.do(chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.getElementById(%q).value = ""`, id)),
		chromedp.SendKeys(chromedp.ID(id), text))
}

func (b *browser) text() string {
	b.t.Helper()
	return value(b, chromedp.Text(chromedp.CSS("body")))
}

func (b *browser) has(texts ...string) {
	b.t.Helper()
	page := b.text()
	for _, s := range texts {
		if !strings.Contains(page, s) {
			b.t.Fatalf("the page (%s) does not say %q:\n%s", b.location(), s, page)
		}
	}
}

func (b *browser) location() string {
	b.t.Helper()
	return value(b, chromedp.Location())
}

func (b *browser) eval(js string) string {
	b.t.Helper()
	return value(b, chromedp.Evaluate[string](js))
}

// focused describes the focused element, e.g. "input#password" or "button".
func (b *browser) focused() string {
	return b.eval(`(e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : ""))(document.activeElement)`)
}

// shot saves a screenshot of the whole page as name.png.
func (b *browser) shot(name string) string {
	b.t.Helper()
	png := value(b, chromedp.FullScreenshot(100))
	file := filepath.Join(b.dir, name+".png")
	if err := os.WriteFile(file, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s", file)
	return file
}

// checkLooks checks what a visitor's browser makes of the page: the stylesheet applied
// (the CSP let it in), the language, and nothing refused by the CSP.
func (b *browser) checkLooks(lang string) {
	b.t.Helper()
	if got := b.eval(`document.documentElement.lang`); got != lang {
		b.t.Errorf("<html lang=%q>, want %q", got, lang)
	}
	if radius := b.eval(`getComputedStyle(document.querySelector("main")).borderTopLeftRadius`); radius != "12px" {
		b.t.Errorf("the stylesheet is not applied (main's border radius is %q)", radius)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range b.messages {
		if strings.Contains(m, "Content Security Policy") || strings.Contains(m, "Content-Security-Policy") {
			b.t.Errorf("the browser refused something: %s", m)
		}
	}
}

func TestBrowserNewUserAcceptsWithPassword(t *testing.T) {
	b := startBrowser(t, "en-US")
	org := createOrganization(t, "Acme Rockets", nil)
	inviterID, _ := createMember(t, org, "Ines Inviter")
	email := uniqueEmail(t, "browser-ann")
	id, token := invitationToken(t, map[string]any{
		"email": email, "name": "Ann Example", "organization_id": org, "role": "member", "inviter_id": inviterID, "expires_in": "72h",
	})

	if status := b.open("/invite/" + token); status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	b.has("Join Acme Rockets", "Ines Inviter invited you to join Acme Rockets as a member.", "Accept the invitation")
	b.checkLooks("en")
	if got := value(b, chromedp.Value(chromedp.ID("name"))); got != "Ann Example" {
		t.Fatalf("the name field holds %q", got)
	}
	b.shot("invite")
	b.phoneShot("/invite/"+token, "invite-phone")

	// From the name field, Tab reaches both password fields and then the button.
	b.do(chromedp.Focus(chromedp.ID("name")))
	var order []string
	for range 3 {
		b.do(chromedp.KeyEvent(kb.Tab))
		order = append(order, b.focused())
	}
	if strings.Join(order, " ") != "input#password input#password_repeat button" {
		t.Fatalf("Tab goes %v", order)
	}
	if ring := b.eval(`(s => s.outlineStyle + " " + s.outlineWidth)(getComputedStyle(document.activeElement))`); ring != "solid 3px" {
		t.Fatalf("the focused button shows no focus ring (outline %q)", ring)
	}

	// A typo in the repeated password is caught, and said in a way screen readers announce.
	b.typeInto("password", "correct horse battery")
	b.typeInto("password_repeat", "correct horse batery")
	if status := b.click("main form button[type=submit]"); status != http.StatusBadRequest {
		t.Fatalf("status %d", status)
	}
	if alert := value(b, chromedp.Text(chromedp.CSS(`[role=alert]`))); !strings.Contains(alert, "not the same") {
		t.Fatalf("alert %q", alert)
	}
	b.shot("invite-error")

	b.typeInto("password", "correct horse battery")
	b.typeInto("password_repeat", "correct horse battery")
	b.do(chromedp.Focus(chromedp.ID("password_repeat")), chromedp.KeyEvent(kb.Tab))
	if f := b.focused(); f != "button" {
		t.Fatalf("focus on %s", f)
	}
	if status := b.press(chromedp.KeyEvent(kb.Enter)); status != http.StatusOK {
		t.Fatalf("status %d after accepting", status)
	}
	if loc := b.location(); loc != env.api.URL+"/welcome" {
		t.Fatalf("landed on %s", loc)
	}
	b.has("You're in!", "You are now a member of Acme Rockets.")
	b.checkLooks("en")
	b.shot("welcome")

	waitForStatus(t, id, "accepted")
	if n := countRows(t, "SELECT COUNT(*) FROM users WHERE email = ? AND name = 'Ann Example' AND password_hash IS NOT NULL", email); n != 1 {
		t.Fatal("no account with the chosen password")
	}
	// The link from the e-mail, opened again, explains that it was used.
	if status := b.open("/invite/" + token); status != http.StatusConflict {
		t.Fatalf("status %d", status)
	}
	b.has("This invitation was already accepted")
}

func TestBrowserNewUserSetsPasswordLater(t *testing.T) {
	b := startBrowser(t, "en-US")
	org := createOrganization(t, "Acme Rockets", nil)
	email := uniqueEmail(t, "browser-later")
	_, token := invitationToken(t, map[string]any{"email": email, "name": "Leo Later", "organization_id": org})

	b.open("/invite/" + token)
	b.click("main form button[type=submit]")
	b.has("You are now a member of Acme Rockets.", "We've sent you an e-mail with a link to choose your password.")
	b.shot("welcome-password-mail")

	link := linkPattern.FindString(waitForMail(t, email, "set_password", 1)[0].Text)
	if status := b.open(link); status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	b.has("Choose your password", "At least 10 characters")
	b.checkLooks("en")
	b.shot("password")
	b.typeInto("password", "short")
	b.typeInto("password_repeat", "short")
	// The browser itself holds back a password shorter than the rules (minlength): no request.
	b.do(chromedp.Click(chromedp.CSS("main form button[type=submit]")), chromedp.Sleep(300*time.Millisecond))
	if loc := b.location(); loc != env.api.URL+pagePath(link) {
		t.Fatalf("a too short password left the page for %s", loc)
	}
	b.typeInto("password", "a much better password")
	b.typeInto("password_repeat", "a much better password")
	if status := b.click("main form button[type=submit]"); status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	b.has("Your password is set")
	b.shot("password-done")
	if n := countRows(t, "SELECT COUNT(*) FROM users WHERE email = ? AND password_hash IS NOT NULL", email); n != 1 {
		t.Fatal("the password was not stored")
	}
}

func TestBrowserExpiredLink(t *testing.T) {
	b := startBrowser(t, "en-US")
	org := createOrganization(t, "Acme Rockets", nil)
	inviterID, _ := createMember(t, org, "Ines Inviter")
	email := uniqueEmail(t, "browser-expired")
	id, token := invitationToken(t, map[string]any{"email": email, "organization_id": org, "inviter_id": inviterID, "expires_in": "2s"})
	waitForStatus(t, id, "expired")

	if status := b.open("/invite/" + token); status != http.StatusGone {
		t.Fatalf("status %d", status)
	}
	b.has("This invitation has expired", "ask Ines Inviter for a new invitation")
	b.checkLooks("en")
	b.shot("expired")
	if status := b.click("main form button[type=submit]"); status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	b.has("We asked for a new invitation", "We let Ines Inviter know")
	b.shot("renewal-requested")
}

func TestBrowserPagesInRussian(t *testing.T) {
	b := startBrowser(t, "ru")
	b.open("/join")
	b.has("Найти участника", "Адрес эл. почты участника", "Найти")
	b.checkLooks("ru")
	b.shot("join-search-ru")

	b.open("/invite/" + strings.Repeat("A", 43))
	b.has("Ссылка не работает")
	b.checkLooks("ru")

	org := createOrganization(t, "Ракеты", nil)
	inviterID, _ := createMember(t, org, "Ирина")
	email := uniqueEmail(t, "browser-ru")
	_, token := invitationToken(t, map[string]any{"email": email, "name": "Анна", "organization_id": org, "inviter_id": inviterID, "locale": "ru"})
	b.open("/invite/" + token)
	b.has("Приглашение в «Ракеты»", "Ирина приглашает вас в организацию «Ракеты» в роли «участник».", "Принять приглашение")
	b.checkLooks("ru")
	b.shot("invite-ru")
	b.typeInto("password", "правильный конь батарея")
	b.typeInto("password_repeat", "правильный конь батарея")
	if status := b.click("main form button[type=submit]"); status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	b.has("Готово!", "Теперь вы участник организации «Ракеты».")
	b.checkLooks("ru")
	b.shot("welcome-ru")
}

func TestBrowserAcceptGoesOnToTheApp(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/start" && r.Header.Get("Referer") != "" {
			t.Errorf("the app was told where the visitor came from: %s", r.Header.Get("Referer"))
		}
		fmt.Fprint(w, "<!doctype html><title>App</title><h1>Welcome to the app</h1>")
	}))
	defer app.Close()

	b := startBrowser(t, "")
	org := createOrganization(t, "Acme Rockets", nil)
	email := uniqueEmail(t, "browser-app")
	_, token := invitationToken(t, map[string]any{"email": email, "name": "Ada App", "organization_id": org, "redirect_url": app.URL + "/start"})
	b.open("/invite/" + token)
	if status := b.click("main form button[type=submit]"); status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	if loc := b.location(); loc != app.URL+"/start" {
		t.Fatalf("landed on %s, want the app (the CSP's form-action must allow the redirect)", loc)
	}
	b.has("Welcome to the app")
}

func TestBrowserJoinSearch(t *testing.T) {
	b := startBrowser(t, "en-US")
	sc := newJoinScenario(t, "Acme Rockets", "Maria Member", "Maria Martins")
	b.open("/join")
	b.has("Find a member")
	b.checkLooks("en")
	b.typeInto("email", sc.memberEmail)
	if status := b.press(chromedp.Focus(chromedp.ID("email")), chromedp.KeyEvent(kb.Enter)); status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	b.has("Maria Martins", "Acme Rockets", "Lisbon", "Request an invitation")
	b.shot("join-search")
	if status := b.click(`main a[href="/join/` + sc.memberID + `"]`); status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	b.has("Ask Maria Martins for an invitation")
	b.shot("join-form")
}

// clickLabelled presses the link or button in the page's card whose visible label is
// label, as a person finds it (by what it says, not by a selector), and waits for the page
// it leads to; it returns that page's HTTP status.
func (b *browser) clickLabelled(label string) int64 {
	b.t.Helper()
	xpath := fmt.Sprintf(`//main//*[self::a or self::button][normalize-space()=%q]`, label)
	return b.press(chromedp.Click(chromedp.Search(xpath)))
}

// A visitor's whole join journey, clicked through as people would: the visitor finds a
// member on /join, asks them for an invitation and confirms their address from the
// e-mail; the member approves from theirs, in their own browser, choosing a role; the
// visitor sets a password from the approval e-mail. The API then shows the outcome.
func TestBrowserJoinJourney(t *testing.T) {
	sc := newJoinScenario(t, "Acme Rockets", "Maria Member", "Maria Martins")
	visitorEmail := uniqueEmail(t, "jo.joiner")
	const (
		visitorName = "Jo Joiner"
		firstLine   = "We met at the Lisbon launch meetup."
		secondLine  = "I'd love to help with the test flights."
	)

	// The visitor finds the member by their address.
	visitor := startBrowser(t, "en-US")
	if status := visitor.open("/join"); status != http.StatusOK {
		t.Fatalf("/join: status %d", status)
	}
	visitor.has("Find a member", "Their e-mail address")
	visitor.checkLooks("en")
	visitor.typeInto("email", sc.memberEmail)
	if status := visitor.clickLabelled("Search"); status != http.StatusOK {
		t.Fatalf("search: status %d", status)
	}
	card := value(visitor, chromedp.Text(chromedp.CSS("main .result .profile")))
	for _, s := range []string{"Maria Martins", "Acme Rockets", "Lisbon", "Happy to vouch for people I know."} {
		if !strings.Contains(card, s) {
			t.Fatalf("the profile card does not say %q:\n%s", s, card)
		}
	}
	if strings.Contains(visitor.text(), "Maria Member") || strings.Contains(visitor.text(), sc.memberEmail) {
		t.Fatal("the search shows the member's account name or address rather than their public profile")
	}
	visitor.shot("journey-1-search")

	// ...asks them for an invitation...
	if status := visitor.clickLabelled("Request an invitation"); status != http.StatusOK {
		t.Fatalf("request form: status %d", status)
	}
	if loc := visitor.location(); loc != env.api.URL+"/join/"+sc.memberID {
		t.Fatalf("the button led to %s", loc)
	}
	visitor.has("Ask Maria Martins for an invitation", "Maria Martins will get your request and can invite you to Acme Rockets.")
	visitor.checkLooks("en")
	visitor.typeInto("name", visitorName)
	visitor.typeInto("email", visitorEmail)
	visitor.typeInto("message", firstLine+"\n"+secondLine)
	visitor.do(chromedp.Blur(chromedp.ID("message"))) // no caret or focus ring in the picture (docs/pages-join-request.png)
	visitor.shot("journey-2-request-form")
	if status := visitor.clickLabelled("Send the request"); status != http.StatusOK {
		t.Fatalf("sending the request: status %d", status)
	}
	visitor.has("Check your e-mail", "we've sent an e-mail to "+visitorEmail, "to confirm your request to Maria Martins")
	visitor.checkLooks("en")
	visitor.shot("journey-3-check-mail")

	// ...and confirms it from the e-mail. Until then the member hears nothing.
	confirmLink := linkPattern.FindString(waitForMail(t, visitorEmail, "join_confirm", 1)[0].Text)
	if !strings.HasPrefix(confirmLink, publicURL+"/join/confirm/") {
		t.Fatalf("the confirmation e-mail links to %q", confirmLink)
	}
	if status := visitor.open(confirmLink); status != http.StatusOK {
		t.Fatalf("confirmation page: status %d", status)
	}
	visitor.has("Confirm your request", "Send this request to Maria Martins of Acme Rockets?", visitorName, visitorEmail, firstLine, secondLine)
	visitor.checkLooks("en")
	visitor.shot("journey-4-confirm")
	if n := len(mailTo(sc.memberEmail, "join_request")); n != 0 {
		t.Fatal("the member was asked before the visitor confirmed")
	}
	if status := visitor.clickLabelled("Confirm and send"); status != http.StatusOK {
		t.Fatalf("confirming: status %d", status)
	}
	visitor.has("Your request was sent", "Your request was sent to Maria Martins.")
	visitor.shot("journey-5-confirmed")

	// The member decides from their own e-mail, in their own browser, and makes the
	// visitor an administrator.
	decision := waitForMail(t, sc.memberEmail, "join_request", 1)[0]
	decideLink := linkPattern.FindString(decision.Text)
	if !strings.HasPrefix(decideLink, publicURL+"/join-requests/") {
		t.Fatalf("the member's e-mail links to %q", decideLink)
	}
	member := startBrowser(t, "en-US")
	if status := member.open(decideLink); status != http.StatusOK {
		t.Fatalf("decision page: status %d", status)
	}
	member.has("A request to join Acme Rockets", visitorName+" would like an invitation to Acme Rockets.",
		visitorEmail, firstLine, secondLine, "Role if you approve", "Approve", "Reject")
	member.checkLooks("en")
	if role := value(member, chromedp.Value(chromedp.ID("role"))); role != "member" {
		t.Fatalf("the role offered first is %q", role)
	}
	// Picking from the list with the keyboard: typing a letter selects the option that
	// starts with it. (One letter: a slow machine may let the type-ahead of several lapse.)
	member.do(chromedp.Focus(chromedp.ID("role")), chromedp.SendKeys(chromedp.ID("role"), "a"))
	if role := value(member, chromedp.Value(chromedp.ID("role"))); role != "admin" {
		t.Fatalf("the role list holds %q after choosing Administrator", role)
	}
	member.do(chromedp.Blur(chromedp.ID("role"))) // docs/pages-join-decision.png
	member.shot("journey-6-decision")
	if status := member.clickLabelled("Approve"); status != http.StatusOK {
		t.Fatalf("approving: status %d", status)
	}
	member.has("Request approved", visitorName+" is now a member of Acme Rockets as an administrator")
	member.checkLooks("en")
	member.shot("journey-7-approved")

	// The visitor's account exists now, without a password until they choose one.
	list := call(t, "GET", "/v1/join-requests?member_id="+sc.memberID, nil)
	expect(t, list, http.StatusOK, "")
	requests, _ := list.get("data").([]any)
	if len(requests) != 1 {
		t.Fatalf("join requests of the member: %s", list.Raw)
	}
	id, _ := requests[0].(map[string]any)["id"].(string)
	var userID string
	eventually(t, 30*time.Second, "the approved request to name the visitor's account", func() bool {
		userID = call(t, "GET", "/v1/join-requests/"+id, nil).str("user_id")
		return userID != ""
	})
	if before := call(t, "GET", "/v1/users/"+userID, nil); before.get("has_password") != false {
		t.Fatalf("the visitor's account before they chose a password: %s", before.Raw)
	}

	// The visitor sets a password from the approval e-mail.
	passwordLink := linkPattern.FindString(waitForMail(t, visitorEmail, "join_approved", 1)[0].Text)
	if !strings.HasPrefix(passwordLink, publicURL+"/password/") {
		t.Fatalf("the approval e-mail links to %q", passwordLink)
	}
	if status := visitor.open(passwordLink); status != http.StatusOK {
		t.Fatalf("password page: status %d", status)
	}
	visitor.has("Choose your password", "At least 10 characters")
	visitor.checkLooks("en")
	visitor.typeInto("password", "to the moon and back")
	visitor.typeInto("password_repeat", "to the moon and back")
	visitor.shot("journey-8-password")
	if status := visitor.clickLabelled("Save the password"); status != http.StatusOK {
		t.Fatalf("setting the password: status %d", status)
	}
	visitor.has("Your password is set")
	visitor.checkLooks("en")
	visitor.shot("journey-9-password-done")

	// What the API says of it all.
	jr := call(t, "GET", "/v1/join-requests/"+id, nil)
	expect(t, jr, http.StatusOK, "")
	if jr.str("status") != "approved" || jr.str("role") != "admin" || jr.str("user_id") != userID || jr.get("confirmed_at") == nil {
		t.Fatalf("join request: %s", jr.Raw)
	}
	user := call(t, "GET", "/v1/users/"+jr.str("user_id"), nil)
	expect(t, user, http.StatusOK, "")
	if user.str("email") != visitorEmail || user.str("name") != visitorName || user.get("has_password") != true {
		t.Fatalf("the visitor's account: %s", user.Raw)
	}
	memberships, _ := user.get("memberships").([]any)
	if len(memberships) != 1 {
		t.Fatalf("the visitor's account has %d memberships: %s", len(memberships), user.Raw)
	}
	if m := memberships[0].(map[string]any); m["organization_id"] != sc.org || m["role"] != "admin" {
		t.Fatalf("the visitor's membership: %v", m)
	}
	if n := countRows(t, "SELECT COUNT(*) FROM users WHERE email = ?", visitorEmail); n != 1 {
		t.Fatalf("%d accounts for the visitor", n)
	}
}
