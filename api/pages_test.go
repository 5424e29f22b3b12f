package api

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
)

// Unit tests of the hosted pages' machinery; the pages themselves are tested end to end
// in e2e/pages_test.go and e2e/browser_test.go.

func TestPageCatalogsAreComplete(t *testing.T) {
	catalogs, err := loadCatalogs()
	if err != nil {
		t.Fatal(err)
	}
	verbs := regexp.MustCompile(`%(\[\d\])?[a-z]`)
	for _, lang := range pageLanguages {
		for key, en := range catalogs["en"] {
			text, ok := catalogs[lang][key]
			if !ok {
				t.Errorf("%s.json lacks %q", lang, key)
				continue
			}
			if got, want := strings.Join(sortedMatches(verbs, text), " "), strings.Join(sortedMatches(verbs, en), " "); got != want {
				t.Errorf("%s.json %q uses %q, en.json uses %q", lang, key, got, want)
			}
			if strings.Contains(text, "%") && len(verbs.FindAllString(text, -1)) != strings.Count(text, "%") {
				t.Errorf("%s.json %q has a stray %%", lang, key)
			}
		}
	}
}

func sortedMatches(re *regexp.Regexp, s string) []string {
	m := re.FindAllString(s, -1)
	for i := range m {
		for j := i + 1; j < len(m); j++ {
			if m[j] < m[i] {
				m[i], m[j] = m[j], m[i]
			}
		}
	}
	return m
}

// Every page in every language renders without a missing text or a fmt complaint.
func TestPagesRenderInEveryLanguage(t *testing.T) {
	p, err := newSite(&Server{}, []byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	for _, lang := range pageLanguages {
		for _, sample := range samplePages() {
			d := sample.data
			d.site, d.Lang, d.CSS, d.CSRF = p, lang, p.cssURL, "x"
			var b strings.Builder
			if err := p.templates[sample.name].ExecuteTemplate(&b, layoutName, &d); err != nil {
				t.Fatalf("%s %s: %v", sample.name, lang, err)
			}
			html := b.String()
			if strings.Contains(html, "%!") || strings.Contains(html, "<no value>") {
				t.Errorf("%s (%s, %s) has a formatting error:\n%s", sample.name, lang, sample.what, html)
			}
			if !strings.Contains(html, `<html lang="`+lang+`"`) {
				t.Errorf("%s (%s): no <html lang>", sample.name, lang)
			}
			if strings.Contains(html, "style=") || strings.Contains(html, "<script") {
				t.Errorf("%s: inline style or script, which the CSP forbids", sample.name)
			}
		}
	}
}

func TestPageLanguage(t *testing.T) {
	p := &site{}
	for _, tc := range []struct{ locale, accept, want string }{
		{"", "", "en"},
		{"", "ru-RU,ru;q=0.9,en;q=0.8", "ru"},
		{"", "pt-BR, de;q=0.5", "de"},
		{"", "ja", "en"},
		{"fr", "ru", "fr"},
		{"de-AT", "en", "de"},
		{"pt-BR", "es-MX,es;q=0.9", "es"},
		{"en", "ru", "en"},
		{"", "garbage;;;", "en"},
	} {
		c, _ := gin.CreateTestContext(httptest.NewRecorder())
		c.Request = httptest.NewRequest("GET", "/", nil)
		c.Request.Header.Set("Accept-Language", tc.accept)
		if got := p.language(c, tc.locale); got != tc.want {
			t.Errorf("locale %q, Accept-Language %q: got %s, want %s", tc.locale, tc.accept, got, tc.want)
		}
	}
}

var csrfInput = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func TestPageCSRF(t *testing.T) {
	s := &Server{}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}

	res, err := client.Get(ts.URL + "/join")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := csrfInput.FindSubmatch(body)
	if res.StatusCode != 200 || m == nil {
		t.Fatalf("GET /join: %d\n%s", res.StatusCode, body)
	}
	for _, h := range []string{"Content-Security-Policy", "Referrer-Policy", "X-Content-Type-Options", "Cache-Control"} {
		if res.Header.Get(h) == "" {
			t.Errorf("no %s header", h)
		}
	}
	cookie := res.Header.Get("Set-Cookie")
	if !strings.Contains(cookie, "HttpOnly") || !strings.Contains(cookie, "SameSite=Strict") {
		t.Errorf("CSRF cookie: %s", cookie)
	}
	token := string(m[1])

	post := func(c *http.Client, form url.Values, header ...string) int {
		req, _ := http.NewRequest("POST", ts.URL+"/join", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode == http.StatusForbidden && !strings.Contains(string(b), "reload") {
			t.Errorf("the 403 page does not ask to reload: %s", b)
		}
		return res.StatusCode
	}
	// An empty e-mail is refused by the page itself (400), after the CSRF check passed.
	if got := post(client, url.Values{"csrf_token": {token}, "email": {""}}); got != http.StatusBadRequest {
		t.Errorf("with the right token: %d, want 400", got)
	}
	if got := post(client, url.Values{"email": {""}}); got != http.StatusForbidden {
		t.Errorf("without a token: %d", got)
	}
	if got := post(client, url.Values{"csrf_token": {token + "x"}, "email": {""}}); got != http.StatusForbidden {
		t.Errorf("with a wrong token: %d", got)
	}
	if got := post(http.DefaultClient, url.Values{"csrf_token": {token}, "email": {""}}); got != http.StatusForbidden {
		t.Errorf("without the cookie: %d", got)
	}
	if got := post(client, url.Values{"csrf_token": {token}, "email": {""}}, "Sec-Fetch-Site", "cross-site"); got != http.StatusForbidden {
		t.Errorf("from another site: %d", got)
	}
	// A token from another server key does not pass.
	other, _ := newSite(&Server{}, []byte("another key, another key, another"))
	u, _ := url.Parse(ts.URL)
	forged := other.sign(other.csrfKey, jar.Cookies(u)[0].Value)
	if got := post(client, url.Values{"csrf_token": {forged}, "email": {""}}); got != http.StatusForbidden {
		t.Errorf("with another key's token: %d", got)
	}
}

func TestPageTemplateOverrides(t *testing.T) {
	dir := t.TempDir()
	pages := filepath.Join(dir, "pages")
	if err := os.MkdirAll(pages, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, src string) {
		if err := os.WriteFile(filepath.Join(pages, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("join_search.html.tmpl", `{{define "title"}}Custom{{end}}{{define "content"}}<p>Our own search {{.T "join.search.title"}}</p>{{end}}`)
	s := &Server{TemplatesDir: dir}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	res, err := http.Get(ts.URL + "/join")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(body), "Our own search Find a member") {
		t.Fatalf("the override is not used:\n%s", body)
	}

	for name, src := range map[string]string{
		"join_search.html.tmpl": `{{define "title"}}x{{end}}{{define "content"}}{{.D.NoSuchField}}{{end}}`,
		"welcome.html.tmpl":     `{{define "title"}}x{{end}}{{define "content"}}{{.T "no.such.text"}}{{end}}`,
		"invite.html.tmpl":      `{{define "title"}}x{{end}}{{define "content"}}{{if}}{{end}}`,
		"invitation.html.tmpl":  `a typo in the name`,
		"link.html.tmpl":        `{{define "content"}}no title{{end}}`,
	} {
		bad := t.TempDir()
		os.MkdirAll(filepath.Join(bad, "pages"), 0o755)
		os.WriteFile(filepath.Join(bad, "pages", name), []byte(src), 0o644)
		err := (&Server{TemplatesDir: bad}).Validate()
		if err == nil {
			t.Errorf("a broken %s passes Validate", name)
			continue
		}
		t.Logf("%s: %v", name, err)
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Handler does not panic on a broken %s", name)
				}
			}()
			(&Server{TemplatesDir: bad}).Handler()
		}()
	}
}

func TestStaticFilesAreCacheable(t *testing.T) {
	s := &Server{}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	p, _ := newSite(s, s.PageSecret)
	res, err := http.Get(ts.URL + p.cssURL)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(res.Header.Get("Cache-Control"), "immutable") ||
		!strings.HasPrefix(res.Header.Get("Content-Type"), "text/css") {
		t.Fatalf("%d %v", res.StatusCode, res.Header)
	}
}

// USHER_TEMPLATES_DIR may hold only e-mail overrides: no pages/ directory is fine.
func TestTemplatesDirWithoutPagesIsFine(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "en"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := (&Server{TemplatesDir: dir}).Validate(); err != nil {
		t.Fatal(err)
	}
}
