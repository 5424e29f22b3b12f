package mail

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"net/url"
	"path"
	"regexp"
	"sort"
	"strings"
	"sync"
	texttemplate "text/template"
	"time"
	"unicode"
	"unicode/utf8"
)

// Kind is the kind of e-mail Usher sends; it is also the Mailgun tag.
type Kind string

const (
	KindInvitation         Kind = "invitation"
	KindSetPassword        Kind = "set_password"
	KindInvitationAccepted Kind = "invitation_accepted"
)

// Kinds lists every kind.
var Kinds = []Kind{KindInvitation, KindSetPassword, KindInvitationAccepted}

// DefaultLocale is used when the requested locale has no templates.
const DefaultLocale = "en"

// InvitationData fills KindInvitation, sent to the invitee.
type InvitationData struct {
	InviteeName, InviterName, OrganizationName, Role, Link string
	ExpiresAt                                              time.Time
}

// SetPasswordData fills KindSetPassword.
type SetPasswordData struct {
	Name, OrganizationName, Link string
	ExpiresAt                    time.Time
}

// InvitationAcceptedData fills KindInvitationAccepted, sent to the inviter.
type InvitationAcceptedData struct {
	InviterName, InviteeName, InviteeEmail, OrganizationName, Role string
}

// Rendered is a ready-to-send e-mail.
type Rendered struct {
	Subject, Text, HTML string
}

// Templates live in templates/<locale>/:
//
//	layout.html.tmpl         HTML frame, defines "layout" (uses "content")
//	partials.txt.tmpl        shared text snippets (parsed with every text template)
//	partials.html.tmpl       shared HTML snippets
//	<kind>.subject.tmpl      subject line (text/template, one line)
//	<kind>.txt.tmpl          plain-text body (text/template)
//	<kind>.html.tmpl         HTML body (html/template), defines "content"
//
// A locale may provide only some kinds; missing ones fall back to
// DefaultLocale. To add a locale, copy templates/en and translate.
//
//go:embed templates
var templateFS embed.FS

// view is what every template sees: the union of the kinds' fields, with
// strings cleaned to one line, plus the rendered subject.
type view struct {
	InviteeName, InviterName, InviteeEmail, Name string
	OrganizationName, Role, Link                 string
	ExpiresAt                                    time.Time
	HasExpiry                                    bool
	Subject                                      string
}

type kindTemplates struct {
	subject *texttemplate.Template
	text    *texttemplate.Template
	html    *htmltemplate.Template
}

// templates[locale][kind]
var loadTemplates = sync.OnceValues(func() (map[string]map[Kind]*kindTemplates, error) {
	return parseTemplates(templateFS)
})

var templateFuncs = map[string]any{
	"article": englishArticle,
}

func parseTemplates(fsys fs.FS) (map[string]map[Kind]*kindTemplates, error) {
	dirs, err := fs.ReadDir(fsys, "templates")
	if err != nil {
		return nil, err
	}
	out := map[string]map[Kind]*kindTemplates{}
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		locale := d.Name()
		dir := path.Join("templates", locale)
		read := func(name string) (string, bool, error) {
			b, err := fs.ReadFile(fsys, path.Join(dir, name))
			if errors.Is(err, fs.ErrNotExist) {
				return "", false, nil
			}
			return string(b), err == nil, err
		}
		textPartials, _, err := read("partials.txt.tmpl")
		if err != nil {
			return nil, err
		}
		htmlPartials, _, err := read("partials.html.tmpl")
		if err != nil {
			return nil, err
		}
		layout, hasLayout, err := read("layout.html.tmpl")
		if err != nil {
			return nil, err
		}
		kinds := map[Kind]*kindTemplates{}
		for _, kind := range Kinds {
			subj, ok1, err1 := read(string(kind) + ".subject.tmpl")
			text, ok2, err2 := read(string(kind) + ".txt.tmpl")
			html, ok3, err3 := read(string(kind) + ".html.tmpl")
			if err := errors.Join(err1, err2, err3); err != nil {
				return nil, err
			}
			if !ok1 && !ok2 && !ok3 {
				continue // this locale does not translate this kind
			}
			if !ok1 || !ok2 || !ok3 || !hasLayout {
				return nil, fmt.Errorf("mail templates %s/%s: need subject, txt and html templates and a layout", locale, kind)
			}
			name := locale + "/" + string(kind)
			kt := &kindTemplates{}
			if kt.subject, err = parseText(name+".subject", textPartials, subj); err != nil {
				return nil, err
			}
			if kt.text, err = parseText(name+".txt", textPartials, text); err != nil {
				return nil, err
			}
			h := htmltemplate.New(name + ".html").Funcs(templateFuncs).Option("missingkey=error")
			for _, src := range []string{layout, htmlPartials, html} {
				if h, err = h.Parse(src); err != nil {
					return nil, err
				}
			}
			kt.html = h
			kinds[kind] = kt
		}
		out[locale] = kinds
	}
	if len(out[DefaultLocale]) != len(Kinds) {
		return nil, fmt.Errorf("mail templates: locale %q must provide every kind", DefaultLocale)
	}
	return out, nil
}

func parseText(name string, sources ...string) (*texttemplate.Template, error) {
	t := texttemplate.New(name).Funcs(templateFuncs).Option("missingkey=error")
	for _, src := range sources {
		var err error
		if t, err = t.Parse(src); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Locales lists, sorted, the locales that have templates.
func Locales() []string {
	all, err := loadTemplates()
	if err != nil {
		return nil
	}
	var out []string
	for l := range all {
		out = append(out, l)
	}
	sort.Strings(out)
	return out
}

// Render renders the e-mail of the given kind in locale (e.g. "en",
// "en-GB", "pt_BR"; unknown locales fall back to "en"). data must be the
// kind's data type (InvitationData, SetPasswordData, InvitationAcceptedData)
// or a pointer to it. Links must be absolute http(s) URLs.
func Render(kind Kind, locale string, data any) (Rendered, error) {
	all, err := loadTemplates()
	if err != nil {
		return Rendered{}, fmt.Errorf("loading mail templates: %w", err)
	}
	v, err := makeView(kind, data)
	if err != nil {
		return Rendered{}, err
	}
	t := pickTemplates(all, kind, locale)
	if t == nil {
		return Rendered{}, fmt.Errorf("mail: unknown kind %q", kind)
	}

	var buf bytes.Buffer
	if err := t.subject.Execute(&buf, v); err != nil {
		return Rendered{}, fmt.Errorf("rendering %s subject: %w", kind, err)
	}
	v.Subject = oneLine(buf.String())
	if v.Subject == "" {
		return Rendered{}, fmt.Errorf("rendering %s subject: empty", kind)
	}

	buf.Reset()
	if err := t.text.Execute(&buf, v); err != nil {
		return Rendered{}, fmt.Errorf("rendering %s text: %w", kind, err)
	}
	text := tidyText(buf.String())

	buf.Reset()
	if err := t.html.ExecuteTemplate(&buf, "layout", v); err != nil {
		return Rendered{}, fmt.Errorf("rendering %s html: %w", kind, err)
	}
	return Rendered{Subject: v.Subject, Text: text, HTML: buf.String()}, nil
}

func pickTemplates(all map[string]map[Kind]*kindTemplates, kind Kind, locale string) *kindTemplates {
	for _, l := range localeCandidates(locale) {
		if t := all[l][kind]; t != nil {
			return t
		}
	}
	return nil
}

// localeCandidates turns "pt_BR" into ["pt-br", "pt", "en"].
func localeCandidates(locale string) []string {
	l := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(locale), "_", "-"))
	var out []string
	for l != "" {
		out = append(out, l)
		i := strings.LastIndex(l, "-")
		if i < 0 {
			break
		}
		l = l[:i]
	}
	return append(out, DefaultLocale)
}

func makeView(kind Kind, data any) (view, error) {
	var v view
	switch kind {
	case KindInvitation:
		var d InvitationData
		switch x := data.(type) {
		case InvitationData:
			d = x
		case *InvitationData:
			if x == nil {
				return v, errors.New("mail: nil InvitationData")
			}
			d = *x
		default:
			return v, fmt.Errorf("mail: %s needs InvitationData, got %T", kind, data)
		}
		v = view{InviteeName: d.InviteeName, InviterName: d.InviterName, OrganizationName: d.OrganizationName,
			Role: d.Role, Link: d.Link, ExpiresAt: d.ExpiresAt}
	case KindSetPassword:
		var d SetPasswordData
		switch x := data.(type) {
		case SetPasswordData:
			d = x
		case *SetPasswordData:
			if x == nil {
				return v, errors.New("mail: nil SetPasswordData")
			}
			d = *x
		default:
			return v, fmt.Errorf("mail: %s needs SetPasswordData, got %T", kind, data)
		}
		v = view{Name: d.Name, OrganizationName: d.OrganizationName, Link: d.Link, ExpiresAt: d.ExpiresAt}
	case KindInvitationAccepted:
		var d InvitationAcceptedData
		switch x := data.(type) {
		case InvitationAcceptedData:
			d = x
		case *InvitationAcceptedData:
			if x == nil {
				return v, errors.New("mail: nil InvitationAcceptedData")
			}
			d = *x
		default:
			return v, fmt.Errorf("mail: %s needs InvitationAcceptedData, got %T", kind, data)
		}
		v = view{InviterName: d.InviterName, InviteeName: d.InviteeName, InviteeEmail: d.InviteeEmail,
			OrganizationName: d.OrganizationName, Role: d.Role}
	default:
		return v, fmt.Errorf("mail: unknown kind %q", kind)
	}

	v.InviteeName = cleanName(v.InviteeName)
	v.InviterName = cleanName(v.InviterName)
	v.InviteeEmail = cleanName(v.InviteeEmail)
	v.Name = cleanName(v.Name)
	v.OrganizationName = cleanName(v.OrganizationName)
	v.Role = cleanName(strings.NewReplacer("_", " ", "-", " ").Replace(v.Role))
	v.HasExpiry = !v.ExpiresAt.IsZero()

	if kind == KindInvitation || kind == KindSetPassword {
		if err := checkLink(v.Link); err != nil {
			return v, err
		}
	}
	return v, nil
}

func checkLink(link string) error {
	if link == "" {
		return errors.New("mail: missing link")
	}
	u, err := url.Parse(link)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
		strings.IndexFunc(link, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return errors.New("mail: link must be an absolute http(s) URL")
	}
	return nil
}

const maxNameRunes = 120

// cleanName makes user-supplied text safe to place in a subject or a line of
// text: no control characters or line breaks, collapsed spaces, bounded length.
func cleanName(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) > maxNameRunes {
		s = strings.TrimSpace(string([]rune(s)[:maxNameRunes])) + "…"
	}
	return s
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

var blankLines = regexp.MustCompile(`\n{3,}`)

// tidyText trims trailing spaces, squeezes runs of blank lines and ends the
// text with exactly one newline.
func tidyText(s string) string {
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \t")
	}
	s = blankLines.ReplaceAllString(strings.Join(lines, "\n"), "\n\n")
	return strings.TrimSpace(s) + "\n"
}

// englishArticle returns "a" or "an" for word (good enough for role names).
func englishArticle(word string) string {
	w := strings.ToLower(strings.TrimSpace(word))
	if w == "" {
		return "a"
	}
	for _, p := range []string{"uni", "use", "usu", "one", "eu"} {
		if strings.HasPrefix(w, p) {
			return "a"
		}
	}
	for _, p := range []string{"hour", "honest", "honor", "honour"} {
		if strings.HasPrefix(w, p) {
			return "an"
		}
	}
	if strings.ContainsRune("aeiou", rune(w[0])) {
		return "an"
	}
	return "a"
}
