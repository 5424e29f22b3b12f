package mail

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	texttemplate "text/template"
	"time"
	"unicode/utf8"
)

// Templates live in templates/<locale>/:
//
//	layout.html.tmpl         HTML frame, defines "layout" (uses "content")
//	partials.txt.tmpl        shared text snippets (parsed with every subject and text template)
//	partials.html.tmpl       shared HTML snippets
//	<kind>.subject.tmpl      subject line (text/template, one line)
//	<kind>.txt.tmpl          plain-text body (text/template)
//	<kind>.html.tmpl         HTML body (html/template), defines "content"
//
// Besides the fields of view, templates may call
//
//	date TIME      the time in UTC, written the way the locale's language does
//	role ROLE      the display name of a role (owner, admin, member, guest)
//	article WORD   "a" or "an" (English)
//
// The language of date and role is the template directory's (falling back
// to English for languages Usher does not know).
//
// Every embedded locale translates every kind. To add a locale, copy
// templates/en and translate.
//
//go:embed templates
var templateFS embed.FS

const (
	layoutFile       = "layout.html.tmpl"
	textPartialsFile = "partials.txt.tmpl"
	htmlPartialsFile = "partials.html.tmpl"
)

func kindFiles(kind Kind) (subject, text, html string) {
	return string(kind) + ".subject.tmpl", string(kind) + ".txt.tmpl", string(kind) + ".html.tmpl"
}

// templateFileNames lists every file name a locale directory may hold.
func templateFileNames() []string {
	names := []string{layoutFile, textPartialsFile, htmlPartialsFile}
	for _, k := range Kinds {
		s, t, h := kindFiles(k)
		names = append(names, s, t, h)
	}
	return names
}

// Renderer renders e-mails from the embedded templates, optionally
// overridden file by file by an operator's templates. It is safe for
// concurrent use.
type Renderer struct {
	templates map[string]map[Kind]*kindTemplates // [locale][kind]
}

// NewRenderer parses and checks every template. dir "" means the embedded
// templates only. Otherwise dir holds <locale>/<file> with the same file
// names as the embedded templates (see templates/en); each file found there
// replaces the embedded file of the same locale and name, and anything
// missing falls back to the embedded file. A locale directory Usher does
// not embed (say "pt-BR") may provide some kinds, each with all three of
// its files; its layout and partials, when missing, are DefaultLocale's.
//
// Every template is parsed and executed once with sample data here, so a
// broken override fails at start-up; the error names the file.
func NewRenderer(dir string) (*Renderer, error) {
	embedded, err := fs.Sub(templateFS, "templates")
	if err != nil {
		return nil, err
	}
	files, err := collectFiles(embedded, func(l, f string) string { return path.Join("templates", l, f) })
	if err != nil {
		return nil, fmt.Errorf("mail templates (embedded): %w", err)
	}
	if dir != "" {
		info, err := os.Stat(dir)
		if err != nil {
			return nil, fmt.Errorf("mail templates: %w", err)
		}
		if !info.IsDir() {
			return nil, fmt.Errorf("mail templates: %s is not a directory", dir)
		}
		overrides, err := collectFiles(os.DirFS(dir), func(l, f string) string { return filepath.Join(dir, l, f) })
		if err != nil {
			return nil, fmt.Errorf("mail templates: %w", err)
		}
		for locale, fm := range overrides {
			if files[locale] == nil {
				files[locale] = map[string]sourceFile{}
			}
			for name, f := range fm {
				files[locale][name] = f
			}
		}
	}
	all, err := compileTemplates(files)
	if err != nil {
		return nil, fmt.Errorf("mail templates: %w", err)
	}
	if err := checkTemplates(all); err != nil {
		return nil, fmt.Errorf("mail templates: %w", err)
	}
	return &Renderer{templates: all}, nil
}

// Locales lists, sorted, the locales that have templates of their own.
func (r *Renderer) Locales() []string {
	if r == nil {
		return Locales()
	}
	out := make([]string, 0, len(r.templates))
	for l := range r.templates {
		out = append(out, l)
	}
	sort.Strings(out)
	return out
}

// sourceFile is one template file: name says where it came from (it is the
// template name, so Go's template errors name the file).
type sourceFile struct {
	name, text string
}

var localeDirPattern = regexp.MustCompile(`^[a-z]{2,3}(-[a-z0-9]{1,8})*$`)

// collectFiles reads <locale>/<file> from fsys: files[locale][file].
// Hidden entries and files not ending in .tmpl are skipped; a .tmpl file
// with an unknown name, or one outside a locale directory, is an error.
func collectFiles(fsys fs.FS, label func(dir, file string) string) (map[string]map[string]sourceFile, error) {
	known := map[string]bool{}
	for _, n := range templateFileNames() {
		known[n] = true
	}
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]sourceFile{}
	dirOf := map[string]string{}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue // .git, Kubernetes' ..data, editor files
		}
		info, err := fs.Stat(fsys, name) // follows symbolic links
		if err != nil {
			return nil, fmt.Errorf("%s: %w", label(name, ""), err)
		}
		if name == "pages" {
			// The hosted pages' overrides share USHER_TEMPLATES_DIR; they are not e-mails.
			continue
		}
		if !info.IsDir() {
			if strings.HasSuffix(name, ".tmpl") {
				return nil, fmt.Errorf("%s: templates go in a locale directory, such as en/%s", label(name, ""), name)
			}
			continue
		}
		locale := normalizeLocale(name)
		if !localeDirPattern.MatchString(locale) {
			return nil, fmt.Errorf("%s: directory name is not a locale (such as \"de\" or \"pt-BR\")", label(name, ""))
		}
		if other, dup := dirOf[locale]; dup {
			return nil, fmt.Errorf("%s and %s are the same locale", label(other, ""), label(name, ""))
		}
		dirOf[locale] = name
		files, err := fs.ReadDir(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", label(name, ""), err)
		}
		fm := map[string]sourceFile{}
		for _, f := range files {
			fname := f.Name()
			if strings.HasPrefix(fname, ".") || !strings.HasSuffix(fname, ".tmpl") {
				continue
			}
			where := label(name, fname)
			if !known[fname] {
				return nil, fmt.Errorf("%s: unknown template file; expected %s, %s, %s or <kind>.subject.tmpl, <kind>.txt.tmpl, <kind>.html.tmpl for a kind in %s",
					where, layoutFile, textPartialsFile, htmlPartialsFile, kindList())
			}
			b, err := fs.ReadFile(fsys, path.Join(name, fname))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			if !utf8.Valid(b) {
				return nil, fmt.Errorf("%s: not valid UTF-8", where)
			}
			fm[fname] = sourceFile{name: where, text: string(b)}
		}
		out[locale] = fm
	}
	return out, nil
}

func kindList() string {
	s := make([]string, len(Kinds))
	for i, k := range Kinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

type kindTemplates struct {
	subject, text *texttemplate.Template
	html          *htmltemplate.Template
	htmlFiles     []string // the files making up html, for error messages
}

// compileTemplates parses files[locale][file] into templates[locale][kind].
func compileTemplates(files map[string]map[string]sourceFile) (map[string]map[Kind]*kindTemplates, error) {
	def := files[DefaultLocale]
	out := map[string]map[Kind]*kindTemplates{}
	locales := make([]string, 0, len(files))
	for l := range files {
		locales = append(locales, l)
	}
	sort.Strings(locales) // deterministic errors
	for _, locale := range locales {
		fm := files[locale]
		shared := func(name string) (sourceFile, bool) {
			if f, ok := fm[name]; ok {
				return f, true
			}
			f, ok := def[name]
			return f, ok
		}
		funcs := templateFuncs(locale)
		kinds := map[Kind]*kindTemplates{}
		for _, kind := range Kinds {
			sn, tn, hn := kindFiles(kind)
			subj, ok1 := fm[sn]
			text, ok2 := fm[tn]
			html, ok3 := fm[hn]
			if !ok1 && !ok2 && !ok3 {
				continue // this locale does not translate this kind
			}
			if !ok1 || !ok2 || !ok3 {
				var missing []string
				for _, m := range []struct {
					name string
					ok   bool
				}{{sn, ok1}, {tn, ok2}, {hn, ok3}} {
					if !m.ok {
						missing = append(missing, m.name)
					}
				}
				found := subj
				if !ok1 {
					found = text
					if !ok2 {
						found = html
					}
				}
				return nil, fmt.Errorf("%s: %s needs its subject, text and HTML templates here; missing %s",
					filepath.Dir(found.name), kind, strings.Join(missing, ", "))
			}
			layout, ok := shared(layoutFile)
			if !ok {
				return nil, fmt.Errorf("locale %s: no %s", locale, layoutFile)
			}
			textPartials, hasTextPartials := shared(textPartialsFile)
			htmlPartials, hasHTMLPartials := shared(htmlPartialsFile)

			var extras []sourceFile
			if hasTextPartials {
				extras = append(extras, textPartials)
			}
			kt := &kindTemplates{}
			var err error
			if kt.subject, err = parseText(funcs, subj, extras...); err != nil {
				return nil, err
			}
			if kt.text, err = parseText(funcs, text, extras...); err != nil {
				return nil, err
			}
			htmlSources := []sourceFile{layout}
			if hasHTMLPartials {
				htmlSources = append(htmlSources, htmlPartials)
			}
			htmlSources = append(htmlSources, html)
			if kt.html, err = parseHTML(funcs, htmlSources); err != nil {
				return nil, err
			}
			for _, f := range htmlSources {
				kt.htmlFiles = append(kt.htmlFiles, f.name)
			}
			kinds[kind] = kt
		}
		if len(kinds) > 0 {
			out[locale] = kinds
		}
	}
	if len(out[DefaultLocale]) != len(Kinds) {
		var missing []string
		for _, k := range Kinds {
			if out[DefaultLocale][k] == nil {
				missing = append(missing, string(k))
			}
		}
		return nil, fmt.Errorf("locale %s must provide every kind; missing %s", DefaultLocale, strings.Join(missing, ", "))
	}
	return out, nil
}

// parseText parses the extras (partials), then main, each under its own
// file name; executing the result executes main.
func parseText(funcs map[string]any, main sourceFile, extras ...sourceFile) (*texttemplate.Template, error) {
	t := texttemplate.New(main.name).Funcs(funcs).Option("missingkey=error")
	for _, f := range extras {
		if _, err := t.New(f.name).Parse(f.text); err != nil {
			return nil, err
		}
	}
	if _, err := t.Parse(main.text); err != nil {
		return nil, err
	}
	return t, nil
}

// parseHTML parses the sources in order, each under its own file name;
// the result is executed as "layout".
func parseHTML(funcs map[string]any, sources []sourceFile) (*htmltemplate.Template, error) {
	t := htmltemplate.New("html").Funcs(funcs).Option("missingkey=error")
	for _, f := range sources {
		if _, err := t.New(f.name).Parse(f.text); err != nil {
			return nil, err
		}
	}
	if t.Lookup("layout") == nil {
		return nil, fmt.Errorf("%s: does not define \"layout\"", sources[0].name)
	}
	if t.Lookup("content") == nil {
		return nil, fmt.Errorf("%s: does not define \"content\"", sources[len(sources)-1].name)
	}
	return t, nil
}

func (t *kindTemplates) execute(kind Kind, v view) (Rendered, error) {
	var buf bytes.Buffer
	if err := t.subject.Execute(&buf, v); err != nil {
		return Rendered{}, fmt.Errorf("rendering %s subject: %w", kind, err)
	}
	v.Subject = oneLine(buf.String())
	if v.Subject == "" {
		return Rendered{}, fmt.Errorf("rendering %s subject (%s): empty", kind, t.subject.Name())
	}

	buf.Reset()
	if err := t.text.Execute(&buf, v); err != nil {
		return Rendered{}, fmt.Errorf("rendering %s text: %w", kind, err)
	}
	text := tidyText(buf.String())

	buf.Reset()
	if err := t.html.ExecuteTemplate(&buf, "layout", v); err != nil {
		return Rendered{}, fmt.Errorf("rendering %s HTML (from %s): %w", kind, strings.Join(t.htmlFiles, ", "), err)
	}
	return Rendered{Subject: v.Subject, Text: text, HTML: buf.String()}, nil
}

// checkTemplates renders every template with sample data, with every field
// set and with none, so that mistakes only seen when executing (a
// misspelt field, HTML the escaper cannot make safe, a lost link) surface
// now rather than when an e-mail is due.
func checkTemplates(all map[string]map[Kind]*kindTemplates) error {
	locales := make([]string, 0, len(all))
	for l := range all {
		locales = append(locales, l)
	}
	sort.Strings(locales)
	for _, locale := range locales {
		for _, kind := range Kinds {
			t := all[locale][kind]
			if t == nil {
				continue
			}
			full, empty := sampleViews(kind)
			for _, v := range []view{full, empty} {
				r, err := t.execute(kind, v)
				if err != nil {
					return fmt.Errorf("locale %s, trying with sample data: %w", locale, err)
				}
				if v.Link == "" {
					continue
				}
				if !strings.Contains(r.Text, v.Link) {
					return fmt.Errorf("locale %s: %s: the text does not show the link (.Link)", locale, t.text.Name())
				}
				if !strings.Contains(r.HTML, v.Link) {
					return fmt.Errorf("locale %s: %s: the HTML does not show the link (.Link)", locale, strings.Join(t.htmlFiles, ", "))
				}
			}
		}
	}
	return nil
}

func sampleViews(kind Kind) (full, empty view) {
	when := time.Date(2030, time.January, 1, 9, 5, 0, 0, time.UTC)
	link := "https://usher.example/sample/link"
	full = view{
		InviteeName: "Invitee", InviterName: "Inviter", InviteeEmail: "invitee@example.com", Name: "Name",
		VisitorName: "Visitor", VisitorEmail: "visitor@example.com", MemberName: "Member",
		OrganizationName: "Organization", Role: "admin", LogoURL: "https://usher.example/logo.png",
		Message: "Hello,\n\nthanks", MessageLines: []string{"Hello,", "", "thanks"},
		ExpiresAt: when, DecideBy: when, HasExpiry: true, HasDecideBy: true,
		Reason: "550 5.1.1 mailbox unavailable",
	}
	switch {
	case linkKinds[kind]:
		full.Link, empty.Link = link, link
	case kind == KindJoinAlreadyMember:
		full.Link, full.LoginURL = link, link
	}
	return full, empty
}
