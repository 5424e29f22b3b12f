package api

// The hosted pages: what a person sees when they open a link from an Usher e-mail.
// Server-rendered with html/template, no JavaScript. Every GET only shows; every change is
// a POST from a form that carries a CSRF token. The pages call the same methods as the
// JSON endpoints (public.go, join_service.go), so both refuse and succeed alike.
//
// Files: pages.go (templates, languages, security headers, CSRF, rendering),
// pages_invite.go (invitation, welcome and set-password pages), pages_join.go (join
// requests). Templates, the stylesheet and the text catalogs are under web/.

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/text/language"

	"github.com/usherhq/usher/internal/domain"
)

//go:embed web/templates/*.html.tmpl web/static/* web/i18n/*.json
var webFiles embed.FS

// pageNames lists every page; each is web/templates/<name>.html.tmpl, rendered inside
// layout.html.tmpl with the pieces of partials.html.tmpl. A file of the same name in
// Server.TemplatesDir/pages/ replaces the embedded one (layout and partials included).
var pageNames = []string{
	"invite", "link", "renewal", "welcome", "password", "password_done",
	"join_search", "join_form", "join_sent", "join_confirm", "join_confirmed", "join_decide", "join_decided",
	"message",
}

const (
	layoutName   = "layout"
	partialsName = "partials"
)

// The page languages, English first: it is the fallback.
var (
	pageLanguages     = []string{"en", "ru", "de", "fr", "es"}
	pageLanguageTags  = []language.Tag{language.English, language.Russian, language.German, language.French, language.Spanish}
	pageLangMatcher   = language.NewMatcher(pageLanguageTags)
	maxAcceptLanguage = 256
)

const (
	csrfField       = "csrf_token"
	csrfCookie      = "usher_csrf"
	csrfCookieHost  = "__Host-usher_csrf" // the name on https: bound to this host, path /, Secure
	welcomeCookie   = "usher_welcome"
	pagesCSP        = "default-src 'none'; style-src 'self'; img-src 'self' https:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
	staticMaxAge    = "public, max-age=31536000, immutable"
	minSecretLength = 16
)

// site is the hosted pages of one Server: parsed templates, catalogs and keys.
type site struct {
	s         *Server
	templates map[string]*template.Template
	catalogs  map[string]map[string]string
	csrfKey   []byte
	flashKey  []byte
	cop       *http.CrossOriginProtection
	static    map[string]staticFile
	cssURL    string
	iconURL   string
}

type staticFile struct {
	body        []byte
	contentType string
	version     string
}

// Validate checks what Handler would otherwise only find when it builds the handler: the
// page templates (including overrides in TemplatesDir, each rendered once with sample data
// in every language) and the page secret. Call it at start-up to report a broken override
// as an error; Handler panics with the same message.
func (s *Server) Validate() error {
	if n := len(s.PageSecret); n > 0 && n < minSecretLength {
		return fmt.Errorf("the page secret must be at least %d bytes long, not %d", minSecretLength, n)
	}
	_, err := newSite(s, s.PageSecret)
	return err
}

// registerPages mounts the hosted pages on r. A broken template override is a start-up
// failure: Handler panics with a message naming the file (Validate returns it instead).
func (s *Server) registerPages(r *gin.Engine) {
	if len(s.PageSecret) == 0 {
		// Fine for one process. Several API instances behind one address must share a
		// secret, or a form rendered by one is refused by another.
		s.PageSecret = make([]byte, 32)
		_, _ = rand.Read(s.PageSecret)
	}
	if len(s.PageSecret) < minSecretLength {
		panic(fmt.Sprintf("usher: the page secret must be at least %d bytes long", minSecretLength))
	}
	p, err := newSite(s, s.PageSecret)
	if err != nil {
		panic("usher: hosted pages: " + err.Error())
	}

	r.GET("/static/:file", p.serveStatic)
	r.HEAD("/static/:file", p.serveStatic)

	pages := r.Group("", p.secure)
	get := func(path string, h gin.HandlerFunc) {
		pages.GET(path, h)
		pages.HEAD(path, h)
	}
	post := func(path string, h gin.HandlerFunc) { pages.POST(path, p.verify, h) }

	get("/invite/:token", p.showInvitation)
	post("/invite/:token", p.acceptInvitation)
	post("/invite/:token/renewal", p.askForRenewal)
	get("/welcome", p.showWelcome)
	get("/password/:token", p.showPassword)
	post("/password/:token", p.choosePassword)

	get("/join", p.showJoinSearch)
	post("/join", p.searchJoin)
	get("/join/:member_id", p.showJoinForm)
	post("/join/:member_id", p.fileJoinRequest)
	get("/join/confirm/:token", p.showJoinConfirm)
	post("/join/confirm/:token", p.confirmJoin)
	get("/join-requests/:token", p.showJoinDecision)
	post("/join-requests/:token", p.decideJoin)
}

func newSite(s *Server, secret []byte) (*site, error) {
	p := &site{s: s, cop: http.NewCrossOriginProtection(), static: map[string]staticFile{}}
	p.csrfKey = derive(secret, "usher pages csrf v1")
	p.flashKey = derive(secret, "usher pages flash v1")

	var err error
	if p.catalogs, err = loadCatalogs(); err != nil {
		return nil, err
	}
	for name, ct := range map[string]string{"usher.css": "text/css; charset=utf-8", "icon.svg": "image/svg+xml"} {
		body, err := webFiles.ReadFile("web/static/" + name)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(body)
		p.static[name] = staticFile{body: body, contentType: ct, version: hex.EncodeToString(sum[:6])}
	}
	p.cssURL = "/static/usher.css?v=" + p.static["usher.css"].version
	p.iconURL = "/static/icon.svg?v=" + p.static["icon.svg"].version

	if p.templates, err = loadTemplates(s.TemplatesDir); err != nil {
		return nil, err
	}
	if err := p.rehearse(); err != nil {
		return nil, err
	}
	return p, nil
}

func derive(secret []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// loadTemplates parses every page with the layout; files in dir/pages replace the embedded
// ones of the same name. A file there that names no page is an error, to catch typos.
func loadTemplates(dir string) (map[string]*template.Template, error) {
	overrides := map[string]string{}
	if dir != "" {
		pagesDir := filepath.Join(dir, "pages")
		entries, err := os.ReadDir(pagesDir)
		if errors.Is(err, fs.ErrNotExist) {
			// USHER_TEMPLATES_DIR may hold e-mail overrides only.
			entries, err = nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("templates directory: %w", err)
		}
		known := append([]string{layoutName, partialsName}, pageNames...)
		for _, e := range entries {
			name, ok := strings.CutSuffix(e.Name(), ".html.tmpl")
			if e.IsDir() || !ok {
				continue
			}
			if !slices.Contains(known, name) {
				return nil, fmt.Errorf("%s: no page is called %q (pages: %s)",
					filepath.Join(pagesDir, e.Name()), name, strings.Join(known, ", "))
			}
			overrides[name] = filepath.Join(pagesDir, e.Name())
		}
	}
	read := func(name string) (string, string, error) {
		if file, ok := overrides[name]; ok {
			b, err := os.ReadFile(file)
			return file, string(b), err
		}
		file := "web/templates/" + name + ".html.tmpl"
		b, err := webFiles.ReadFile(file)
		return "api/" + file, string(b), err
	}

	layoutFile, layout, err := read(layoutName)
	if err != nil {
		return nil, err
	}
	partialsFile, partials, err := read(partialsName)
	if err != nil {
		return nil, err
	}
	out := map[string]*template.Template{}
	for _, name := range pageNames {
		file, src, err := read(name)
		if err != nil {
			return nil, err
		}
		t, err := template.New(layoutName).Option("missingkey=error").Parse(layout)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", layoutFile, err)
		}
		if _, err := t.New(partialsName).Parse(partials); err != nil {
			return nil, fmt.Errorf("%s: %w", partialsFile, err)
		}
		if _, err := t.New(name).Parse(src); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		for _, block := range []string{"title", "content"} {
			if t.Lookup(block) == nil {
				return nil, fmt.Errorf("%s: the page must define {{define %q}}", file, block)
			}
		}
		out[name] = t
	}
	return out, nil
}

// loadCatalogs reads web/i18n/<lang>.json. English must have every key; another language
// may miss some (they fall back to English) but may not have keys English lacks.
func loadCatalogs() (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	for _, lang := range pageLanguages {
		raw, err := webFiles.ReadFile("web/i18n/" + lang + ".json")
		if err != nil {
			return nil, err
		}
		var m map[string]string
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("web/i18n/%s.json: %w", lang, err)
		}
		out[lang] = m
	}
	for lang, m := range out {
		for key := range m {
			if _, ok := out["en"][key]; !ok {
				return nil, fmt.Errorf("web/i18n/%s.json: key %q is not in en.json", lang, key)
			}
		}
	}
	return out, nil
}

// rehearse renders every page in every language with sample data, so a template that
// names a missing field or text key fails at start-up, not in front of a visitor.
func (p *site) rehearse() error {
	for _, lang := range pageLanguages {
		for _, sample := range samplePages() {
			d := sample.data
			d.site, d.Lang = p, lang
			d.CSS, d.Icon, d.CSRF = p.cssURL, p.iconURL, "sample"
			if err := p.templates[sample.name].ExecuteTemplate(io.Discard, layoutName, &d); err != nil {
				return fmt.Errorf("page %s (%s, %s): %w", sample.name, lang, sample.what, err)
			}
		}
	}
	return nil
}

// page is what every template gets. D holds the page's own data (see the comment at the
// top of each template).
type page struct {
	site *site
	// Lang is the page's language, for <html lang>.
	Lang string
	CSS  string
	Icon string
	// CSRF is the value of the hidden csrf_token field every form must carry.
	CSRF string
	// Org brands the page: the organization's name and, if https, its logo.
	Org *brand
	// Alert is an error to announce above the form (already in the page's language).
	Alert string
	D     any

	status      int
	formTargets []string
}

type brand struct {
	Name string
	Logo string
}

func newBrand(name string, logo *string) *brand {
	if name == "" {
		return nil
	}
	b := &brand{Name: name}
	if logo != nil {
		// The CSP allows https images only; anything else is left out.
		if u, err := url.Parse(*logo); err == nil && u.Scheme == "https" && u.Host != "" {
			b.Logo = u.String()
		}
	}
	return b
}

func (d *page) logo() string {
	if d.Org == nil {
		return ""
	}
	return d.Org.Logo
}

// T translates key into the page's language; args fill %s/%d (or %[n]s) in the text.
func (d *page) T(key string, args ...any) (string, error) {
	text, ok := d.site.catalogs[d.Lang][key]
	if !ok {
		if text, ok = d.site.catalogs["en"][key]; !ok {
			return "", fmt.Errorf("no text %q in web/i18n/en.json", key)
		}
	}
	if len(args) == 0 {
		return text, nil
	}
	return fmt.Sprintf(text, args...), nil
}

// Role names a role in the page's language, as a label ("Administrator"), or as it is if
// the catalog does not know it.
func (d *page) Role(role string) string {
	if text, err := d.T("role." + role); err == nil {
		return text
	}
	return role
}

// RoleAs names a role for the middle of a sentence: "… as %s" ("an administrator").
func (d *page) RoleAs(role string) string {
	if text, err := d.T("role_as." + role); err == nil {
		return text
	}
	return role
}

// Date writes a time (time.Time or *time.Time) in the page's language, in UTC (the page
// cannot know the reader's time zone without JavaScript), e.g. "12 March 2030, 14:00 UTC".
func (d *page) Date(v any) (string, error) {
	var t time.Time
	switch v := v.(type) {
	case time.Time:
		t = v
	case *time.Time:
		if v == nil {
			return "", nil
		}
		t = *v
	default:
		return "", fmt.Errorf("Date needs a time, not %T", v)
	}
	u := t.UTC()
	month, err := d.T(fmt.Sprintf("month.%d", int(u.Month())))
	if err != nil {
		return "", err
	}
	return d.T("date", u.Day(), month, u.Year(), u.Format("15:04"))
}

// Sub is this page with other data, for the shared pieces in partials.html.tmpl:
// {{template "profile" ($.Sub .Member)}}.
func (d *page) Sub(v any) *page {
	sub := *d
	sub.D = v
	return &sub
}

// MinPassword is the least number of characters a password needs.
func (d *page) MinPassword() int { return MinPasswordLength }

// newPage starts a page in lang for the request.
func (p *site) newPage(c *gin.Context, lang string, org *brand, data any) *page {
	return &page{site: p, Lang: lang, CSS: p.cssURL, Icon: p.iconURL, CSRF: p.csrfToken(c), Org: org, D: data, status: http.StatusOK}
}

// render writes the page. The template runs into a buffer first, so a failure becomes a
// plain error page rather than half a page.
func (p *site) render(c *gin.Context, name string, d *page) {
	var buf bytes.Buffer
	if err := p.templates[name].ExecuteTemplate(&buf, layoutName, d); err != nil {
		c.Error(fmt.Errorf("rendering page %s: %w", name, err)) //nolint:errcheck // for the request log
		c.Data(http.StatusInternalServerError, "text/html; charset=utf-8",
			[]byte("<!doctype html><title>Error</title><p>Something went wrong. Please try again later.</p>"))
		c.Abort()
		return
	}
	if len(d.formTargets) > 0 {
		c.Header("Content-Security-Policy", strings.Replace(pagesCSP, "form-action 'self'",
			"form-action 'self' "+strings.Join(d.formTargets, " "), 1))
	}
	c.Data(d.status, "text/html; charset=utf-8", buf.Bytes())
}

// language picks the page language: locale (an invitation's or a join request's) if a
// page language serves it well, else the browser's Accept-Language, else English.
func (p *site) language(c *gin.Context, locale string) string {
	if locale != "" {
		if tag, err := language.Parse(locale); err == nil {
			if _, i, conf := pageLangMatcher.Match(tag); conf >= language.High {
				return pageLanguages[i]
			}
		}
	}
	header := c.GetHeader("Accept-Language")
	if len(header) > maxAcceptLanguage {
		header = header[:maxAcceptLanguage]
	}
	if tags, _, err := language.ParseAcceptLanguage(header); err == nil && len(tags) > 0 {
		if _, i, conf := pageLangMatcher.Match(tags...); conf != language.No {
			return pageLanguages[i]
		}
	}
	return pageLanguages[0]
}

// secure sets the headers every page carries. Pages carry tokens in their address and in
// their forms, so nothing may cache them, frame them, or learn their address as referrer.
func (p *site) secure(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", pagesCSP)
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	c.Next()
}

func (p *site) serveStatic(c *gin.Context) {
	f, ok := p.static[c.Param("file")]
	if !ok {
		writeError(c, domain.Errorf(domain.CodeNotFound, "no such file"))
		return
	}
	h := c.Writer.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	if c.Query("v") == f.version {
		h.Set("Cache-Control", staticMaxAge)
	} else {
		h.Set("Cache-Control", "public, max-age=300")
	}
	h.Set("ETag", `"`+f.version+`"`)
	if c.GetHeader("If-None-Match") == `"`+f.version+`"` {
		c.Status(http.StatusNotModified)
		return
	}
	c.Data(http.StatusOK, f.contentType, f.body)
}

// ---- CSRF ------------------------------------------------------------------------------
//
// A synchronizer token bound to a cookie: the browser holds a random value in an HttpOnly,
// SameSite=Strict cookie (Secure, and named __Host-…, on https); every form carries
// HMAC-SHA256(key, value) in a hidden field. A POST must bring both, and they must match
// (compared in constant time). Another site can neither read the cookie nor compute the
// HMAC without the server's key. net/http's CrossOriginProtection (Sec-Fetch-Site / Origin)
// checks the same thing a second way.

func isHTTPS(c *gin.Context) bool {
	return c.Request.TLS != nil || strings.EqualFold(c.GetHeader("X-Forwarded-Proto"), "https")
}

func csrfCookieName(c *gin.Context) string {
	if isHTTPS(c) {
		return csrfCookieHost
	}
	return csrfCookie
}

// csrfToken returns the form token for this browser, giving it a cookie first if needed.
func (p *site) csrfToken(c *gin.Context) string {
	name := csrfCookieName(c)
	value, err := c.Cookie(name)
	if err != nil || !validCookieValue(value) {
		buf := make([]byte, 32)
		_, _ = rand.Read(buf)
		value = base64.RawURLEncoding.EncodeToString(buf)
		http.SetCookie(c.Writer, &http.Cookie{
			Name: name, Value: value, Path: "/", HttpOnly: true, Secure: isHTTPS(c), SameSite: http.SameSiteStrictMode,
		})
		// Set the cookie on the request too, so a second token in the same response agrees.
		c.Request.AddCookie(&http.Cookie{Name: name, Value: value})
	}
	return p.sign(p.csrfKey, value)
}

func validCookieValue(v string) bool {
	b, err := base64.RawURLEncoding.DecodeString(v)
	return err == nil && len(b) == 32
}

func (p *site) sign(key []byte, value string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(value))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// verify guards every POST: it reads the form and checks the CSRF token. A failure shows
// a "reload and try again" page (403); nothing else runs.
func (p *site) verify(c *gin.Context) {
	if err := c.Request.ParseForm(); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			p.message(c, http.StatusRequestEntityTooLarge, "", "error.too_large.title", "error.too_large.body")
		} else {
			p.message(c, http.StatusBadRequest, "", "error.bad_form.title", "error.bad_form.body")
		}
		c.Abort()
		return
	}
	if !p.csrfOK(c) {
		p.message(c, http.StatusForbidden, "", "error.csrf.title", "error.csrf.body")
		c.Abort()
		return
	}
	c.Next()
}

func (p *site) csrfOK(c *gin.Context) bool {
	if err := p.cop.Check(c.Request); err != nil {
		return false
	}
	value, err := c.Cookie(csrfCookieName(c))
	if err != nil || !validCookieValue(value) {
		return false
	}
	got, err := base64.RawURLEncoding.DecodeString(c.Request.PostForm.Get(csrfField))
	if err != nil {
		return false
	}
	want, _ := base64.RawURLEncoding.DecodeString(p.sign(p.csrfKey, value))
	return hmac.Equal(got, want)
}

// ---- messages and errors -----------------------------------------------------------------

type messagePage struct {
	Title string
	Body  string
	// Back, if set, is a link (same site) offered to try again.
	Back string
}

// message renders a page that only says something: title and body are text keys.
func (p *site) message(c *gin.Context, status int, locale, title, body string) {
	d := p.newPage(c, p.language(c, locale), nil, nil)
	d.status = status
	t, _ := d.T(title)
	b, _ := d.T(body)
	d.D = messagePage{Title: t, Body: b}
	p.render(c, "message", d)
}

// failed shows the page for an error no page explains better: outages ask to retry, the
// rest is an internal error (logged, never shown).
func (p *site) failed(c *gin.Context, locale string, err error) {
	var de *domain.Error
	switch {
	case errors.As(err, &de) && de.Code == domain.CodeTemporarilyUnavailable, !errors.As(err, &de) && dependencyUnavailable(err):
		if de == nil {
			c.Error(err) //nolint:errcheck // for the request log
		}
		c.Header("Retry-After", "5")
		p.message(c, http.StatusServiceUnavailable, locale, "error.unavailable.title", "error.unavailable.body")
	case errors.As(err, &de) && de.Code == domain.CodeRateLimited:
		c.Header("Retry-After", "60")
		p.message(c, http.StatusTooManyRequests, locale, "error.rate_limited.title", "error.rate_limited.body")
	default:
		c.Error(err) //nolint:errcheck // for the request log
		p.message(c, http.StatusInternalServerError, locale, "error.internal.title", "error.internal.body")
	}
}

// errorCode is err's domain code, or "" for errors that are not domain errors.
func errorCode(err error) domain.Code {
	var de *domain.Error
	if errors.As(err, &de) {
		return de.Code
	}
	return ""
}

func errorDetail(err error, key string) any {
	var de *domain.Error
	if errors.As(err, &de) {
		return de.Details[key]
	}
	return nil
}

// origin returns scheme://host of an http(s) URL, or "".
func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// safeRedirect returns raw if it is an absolute http(s) URL.
func safeRedirect(raw *string) string {
	if raw == nil || origin(*raw) == "" {
		return ""
	}
	return *raw
}

// flash is a small signed cookie that carries what the page after a redirect shows.
func (p *site) setFlash(c *gin.Context, name, cookiePath string, v any) {
	raw, _ := json.Marshal(v)
	value := base64.RawURLEncoding.EncodeToString(raw)
	http.SetCookie(c.Writer, &http.Cookie{
		Name: name, Value: value + "." + p.sign(p.flashKey, name+"|"+value), Path: cookiePath, MaxAge: 600,
		HttpOnly: true, Secure: isHTTPS(c), SameSite: http.SameSiteStrictMode,
	})
}

func (p *site) readFlash(c *gin.Context, name string, v any) bool {
	cookie, err := c.Cookie(name)
	if err != nil {
		return false
	}
	value, sig, ok := strings.Cut(cookie, ".")
	if !ok || !hmac.Equal([]byte(sig), []byte(p.sign(p.flashKey, name+"|"+value))) {
		return false
	}
	raw, err := base64.RawURLEncoding.DecodeString(value)
	return err == nil && json.Unmarshal(raw, v) == nil
}
