package mail

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeFiles creates dir/<name> for each name (which may contain "/").
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func mustRenderer(t *testing.T, dir string) *Renderer {
	t.Helper()
	r, err := NewRenderer(dir)
	if err != nil {
		t.Fatalf("NewRenderer(%q): %v", dir, err)
	}
	return r
}

func renderWith(t *testing.T, r *Renderer, kind Kind, locale string, data any) Rendered {
	t.Helper()
	out, err := r.Render(kind, locale, data)
	if err != nil {
		t.Fatalf("Render(%s, %q): %v", kind, locale, err)
	}
	return out
}

func TestNewRendererEmbeddedOnly(t *testing.T) {
	r := mustRenderer(t, "")
	for _, locale := range translated {
		for _, kind := range Kinds {
			data, _ := sampleData(kind, "Bea", "Acme", testLogo)
			if got, want := renderWith(t, r, kind, locale, data), mustRender(t, kind, locale, data); got != want {
				t.Errorf("%s/%s: NewRenderer(\"\") differs from Render", locale, kind)
			}
		}
	}
	if got := strings.Join(r.Locales(), ","); got != "de,en,es,fr,ru" {
		t.Errorf("Locales() = %s", got)
	}
	var nilRenderer *Renderer
	if _, err := nilRenderer.Render(KindInvitation, "de", InvitationData{Link: testLink}); err != nil {
		t.Errorf("nil Renderer: %v", err)
	}
}

func TestOverrideOneFile(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"en/invitation.subject.tmpl": `Come and join {{template "org" .}}!`,
		"README.md":                  "notes for operators",
		"en/notes.txt":               "not a template",
		".git/config":                "ignored",
	})
	r := mustRenderer(t, dir)
	data := InvitationData{InviterName: "Ann", OrganizationName: "Acme", Role: "admin", Link: testLink, ExpiresAt: expires, LogoURL: testLogo}
	got := renderWith(t, r, KindInvitation, "en", data)
	want := mustRender(t, KindInvitation, "en", data)
	if got.Subject != "Come and join Acme!" {
		t.Errorf("subject = %q", got.Subject)
	}
	if got.Text != want.Text {
		t.Errorf("text changed:\n%s", got.Text)
	}
	// The HTML only differs in its <title>, which is the subject.
	if strings.Replace(got.HTML, "<title>Come and join Acme!</title>", "<title>Ann invited you to join Acme on Usher</title>", 1) != want.HTML {
		t.Errorf("HTML changed beyond the title:\n%s", got.HTML)
	}
	if got := renderWith(t, r, KindInvitation, "en-GB", data); got.Subject != "Come and join Acme!" {
		t.Errorf("en-GB subject = %q", got.Subject)
	}
	// Everything else is untouched.
	for _, locale := range translated {
		for _, kind := range Kinds {
			if locale == "en" && kind == KindInvitation {
				continue
			}
			data, _ := sampleData(kind, "Bea", "Acme", testLogo)
			if renderWith(t, r, kind, locale, data) != mustRender(t, kind, locale, data) {
				t.Errorf("%s/%s changed", locale, kind)
			}
		}
	}
}

func TestOverrideSharedFiles(t *testing.T) {
	layout, err := templateFS.ReadFile("templates/de/layout.html.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	partials, err := templateFS.ReadFile("templates/de/partials.txt.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	const hi = `{{define "hi"}}{{if .}}Hallo {{.}},{{else}}Guten Tag,{{end}}{{end}}`
	if !strings.Contains(string(partials), hi) {
		t.Fatal("the German greeting moved; update this test")
	}
	dir := writeFiles(t, map[string]string{
		// Operators' own footer in German, and their own greeting.
		"de/layout.html.tmpl":  strings.Replace(string(layout), "Gesendet von Usher", "Ihr Team von Acme", 1),
		"de/partials.txt.tmpl": strings.Replace(string(partials), hi, `{{define "hi"}}Moin{{if .}} {{.}}{{end}},{{end}}`, 1),
	})
	r := mustRenderer(t, dir)
	for _, kind := range Kinds {
		data, _ := sampleData(kind, "Bea", "Acme", "")
		got := renderWith(t, r, kind, "de", data)
		want := mustRender(t, kind, "de", data)
		if !strings.Contains(got.HTML, "Ihr Team von Acme") || strings.Contains(got.HTML, "Gesendet von Usher") {
			t.Errorf("%s: layout not overridden", kind)
		}
		if !strings.HasPrefix(got.Text, "Moin Bea") || strings.Replace(got.Text, "Moin", "Hallo", 1) != want.Text {
			t.Errorf("%s: text:\n%s", kind, got.Text)
		}
		if en := renderWith(t, r, kind, "en", data); en != mustRender(t, kind, "en", data) {
			t.Errorf("%s: English changed", kind)
		}
	}
}

func TestOverrideNewLocaleAndMatching(t *testing.T) {
	kindFilesFor := func(prefix, word string) map[string]string {
		return map[string]string{
			prefix + "/invitation.subject.tmpl": word + ` {{template "org" .}}`,
			prefix + "/invitation.txt.tmpl":     word + "\n{{.Link}}\n",
			prefix + "/invitation.html.tmpl":    `{{define "buttonLabel"}}` + word + `{{end}}{{define "content"}}{{template "button" .}}{{end}}`,
		}
	}
	files := kindFilesFor("pt-BR", "Convite-BR")
	for k, v := range kindFilesFor("pt", "Convite-PT") {
		files[k] = v
	}
	r := mustRenderer(t, writeFiles(t, files))
	if got := strings.Join(r.Locales(), ","); got != "de,en,es,fr,pt,pt-br,ru" {
		t.Errorf("Locales() = %s", got)
	}
	data := InvitationData{OrganizationName: "Acme", Link: testLink}
	for locale, want := range map[string]string{
		"pt-BR": "Convite-BR Acme", // exact
		"pt_br": "Convite-BR Acme",
		"pt-PT": "Convite-PT Acme", // base language
		"pt":    "Convite-PT Acme",
		"it":    "Ann invited you", // DefaultLocale
	} {
		got := renderWith(t, r, KindInvitation, locale, data)
		if want == "Ann invited you" {
			want = "You're invited to join Acme on Usher"
		}
		if got.Subject != want {
			t.Errorf("%s: subject %q, want %q", locale, got.Subject, want)
		}
		checkLinkOnce(t, got, testLink)
	}
	// Kinds the new locale does not translate are English, with the
	// English layout and partials.
	got := renderWith(t, r, KindSetPassword, "pt-BR", SetPasswordData{Link: testLink})
	if got != mustRender(t, KindSetPassword, "en", SetPasswordData{Link: testLink}) {
		t.Error("pt-BR set_password is not the English one")
	}
}

func TestBrokenOverrides(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  []string // in the error
	}{
		{"parse error", map[string]string{"de/invitation.txt.tmpl": "Hallo {{if .InviteeName}}\n{{.Link}}\n"},
			[]string{filepath.Join("de", "invitation.txt.tmpl"), "unexpected EOF"}},
		{"unknown field", map[string]string{"fr/set_password.txt.tmpl": "{{.Link}} {{.Nmae}}"},
			[]string{filepath.Join("fr", "set_password.txt.tmpl"), "Nmae"}},
		{"unknown function", map[string]string{"en/join_request.subject.tmpl": "{{shout .VisitorName}}"},
			[]string{filepath.Join("en", "join_request.subject.tmpl"), "shout"}},
		{"unknown partial", map[string]string{"es/join_rejected.html.tmpl": `{{define "content"}}{{template "nope" .}}{{end}}`},
			[]string{filepath.Join("es", "join_rejected.html.tmpl"), "nope"}},
		{"unsafe HTML", map[string]string{"ru/invitation.html.tmpl": `{{define "content"}}<a href="{{.Link}}>x</a>{{end}}`},
			[]string{filepath.Join("ru", "invitation.html.tmpl")}},
		{"no content", map[string]string{"en/invitation.html.tmpl": `{{define "buttonLabel"}}x{{end}}`},
			[]string{filepath.Join("en", "invitation.html.tmpl"), `"content"`}},
		{"lost link", map[string]string{"en/join_confirm.txt.tmpl": "Please confirm on the website."},
			[]string{filepath.Join("en", "join_confirm.txt.tmpl"), "link"}},
		{"empty subject", map[string]string{"de/join_approved.subject.tmpl": "{{if .VisitorName}}Hallo{{end}}"},
			[]string{filepath.Join("de", "join_approved.subject.tmpl"), "empty"}},
		{"misspelt file", map[string]string{"en/invitaton.subject.tmpl": "x"},
			[]string{filepath.Join("en", "invitaton.subject.tmpl"), "unknown template file"}},
		{"template outside a locale", map[string]string{"invitation.subject.tmpl": "x"},
			[]string{"invitation.subject.tmpl", "locale directory"}},
		{"not a locale", map[string]string{"backup/invitation.subject.tmpl": "x"},
			[]string{"backup", "not a locale"}},
		{"incomplete kind", map[string]string{"it/invitation.subject.tmpl": "Invito"},
			[]string{"it", "invitation.txt.tmpl", "invitation.html.tmpl"}},
		{"invalid UTF-8", map[string]string{"de/invitation.subject.tmpl": "Einladung \xff"},
			[]string{filepath.Join("de", "invitation.subject.tmpl"), "UTF-8"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, tt.files)
			_, err := NewRenderer(dir)
			if err == nil {
				t.Fatal("NewRenderer accepted a broken override")
			}
			t.Log(err)
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
			if !strings.Contains(err.Error(), dir) {
				t.Errorf("error %q does not name the override directory", err)
			}
		})
	}

	if _, err := NewRenderer(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing directory accepted")
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := NewRenderer(file); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("file as directory: %v", err)
	}
	// An override replaces a whole file: partials missing a snippet fail.
	partial := writeFiles(t, map[string]string{"de/partials.txt.tmpl": `{{define "hi"}}Moin,{{end}}`})
	if _, err := NewRenderer(partial); err == nil || !strings.Contains(err.Error(), "org") {
		t.Errorf("incomplete partials: %v", err)
	}
	dup := writeFiles(t, map[string]string{"pt-BR/x.md": "", "pt_br/y.md": ""})
	if _, err := NewRenderer(dup); err == nil || !strings.Contains(err.Error(), "same locale") {
		t.Errorf("duplicate locale: %v", err)
	}
}

// Kubernetes mounts ConfigMaps as symbolic links into a hidden ..data
// directory; such a tree must work.
func TestOverrideThroughSymlinks(t *testing.T) {
	dir := writeFiles(t, map[string]string{"..data/en/invitation.subject.tmpl": "Welcome aboard"})
	if err := os.Symlink(filepath.Join("..data", "en"), filepath.Join(dir, "en")); err != nil {
		t.Skip("no symbolic links:", err)
	}
	r := mustRenderer(t, dir)
	if got := renderWith(t, r, KindInvitation, "en", InvitationData{Link: testLink}); got.Subject != "Welcome aboard" {
		t.Errorf("subject = %q", got.Subject)
	}
}

// USHER_TEMPLATES_DIR is shared with the hosted pages, whose overrides live in pages/.
func TestRendererIgnoresThePagesDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "pages"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pages", "invite.html.tmpl"), []byte("{{define \"x\"}}{{end}}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := NewRenderer(dir); err != nil {
		t.Fatalf("a pages/ directory broke the e-mail renderer: %v", err)
	}
}
