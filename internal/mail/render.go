package mail

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// Kind is the kind of e-mail Usher sends; it is also the Mailgun tag.
type Kind string

const (
	// KindInvitation invites someone to an organization (InvitationData).
	KindInvitation Kind = "invitation"
	// KindSetPassword gives a new account its link to choose a password (SetPasswordData).
	KindSetPassword Kind = "set_password"
	// KindInvitationAccepted tells the inviter the invitee joined (InvitationAcceptedData).
	KindInvitationAccepted Kind = "invitation_accepted"
	// KindJoinConfirm asks a visitor who asked to join an organization
	// through a member to confirm it was them (JoinConfirmData).
	KindJoinConfirm Kind = "join_confirm"
	// KindJoinRequest asks the member to approve or reject a confirmed
	// join request (JoinRequestData).
	KindJoinRequest Kind = "join_request"
	// KindJoinReminder reminds the member of an undecided join request
	// (JoinRequestData).
	KindJoinReminder Kind = "join_reminder"
	// KindJoinApproved tells the visitor they were let in, with a link to
	// choose a password (JoinApprovedData).
	KindJoinApproved Kind = "join_approved"
	// KindJoinRejected tells the visitor, politely, that they were not let
	// in (JoinRejectedData).
	KindJoinRejected Kind = "join_rejected"
	// KindJoinAlreadyMember tells a visitor who asked to join that they
	// already are a member (JoinAlreadyMemberData).
	KindJoinAlreadyMember Kind = "join_already_member"
	// KindRenewalRequested tells an inviter that their invitee opened an
	// expired or revoked invitation and asks for a new one
	// (RenewalRequestedData).
	KindRenewalRequested Kind = "invitation_renewal_requested"
	// KindInvitationReminder reminds the invitee, before the invitation expires, with a
	// fresh link (InvitationData).
	KindInvitationReminder Kind = "invitation_reminder"
	// KindInvitationFailed tells the inviter that the invitation could not be delivered
	// (InvitationFailedData).
	KindInvitationFailed Kind = "invitation_failed"
	// KindInvitationExpired tells the inviter that the invitation expired unaccepted
	// (InvitationExpiredData).
	KindInvitationExpired Kind = "invitation_expired"
)

// Kinds lists every kind.
var Kinds = []Kind{
	KindInvitation, KindSetPassword, KindInvitationAccepted,
	KindJoinConfirm, KindJoinRequest, KindJoinReminder, KindJoinApproved, KindJoinRejected,
	KindJoinAlreadyMember, KindRenewalRequested,
	KindInvitationReminder, KindInvitationFailed, KindInvitationExpired,
}

// DefaultLocale is used when the requested locale has no templates.
const DefaultLocale = "en"

// Every data type has a LogoURL: when it is an absolute http(s) URL, the
// HTML part shows the organization's logo at the top (anything else is
// ignored). The text part never mentions it.
//
// Times are shown in UTC, in the language of the template used.

// InvitationData fills KindInvitation, sent to the invitee.
type InvitationData struct {
	InviteeName, InviterName, OrganizationName, Role, Link string
	ExpiresAt                                              time.Time
	LogoURL                                                string
}

// SetPasswordData fills KindSetPassword.
type SetPasswordData struct {
	Name, OrganizationName, Link string
	ExpiresAt                    time.Time
	LogoURL                      string
}

// InvitationAcceptedData fills KindInvitationAccepted, sent to the inviter.
type InvitationAcceptedData struct {
	InviterName, InviteeName, InviteeEmail, OrganizationName, Role string
	LogoURL                                                        string
}

// JoinConfirmData fills KindJoinConfirm, sent to the visitor. Link leads to
// the page where they confirm the request.
type JoinConfirmData struct {
	VisitorName, MemberName, OrganizationName, Link string
	ExpiresAt                                       time.Time
	LogoURL                                         string
}

// JoinRequestData fills KindJoinRequest and KindJoinReminder, sent to the
// member asked to decide. Message is the visitor's own words (may be empty,
// may span lines); Link leads to the decision page.
type JoinRequestData struct {
	MemberName, VisitorName, VisitorEmail, Message, OrganizationName, Link string
	DecideBy                                                               time.Time
	LogoURL                                                                string
}

// JoinApprovedData fills KindJoinApproved, sent to the visitor. Link leads
// to the page where they choose a password.
type JoinApprovedData struct {
	VisitorName, OrganizationName, Link string
	ExpiresAt                           time.Time
	LogoURL                             string
}

// JoinRejectedData fills KindJoinRejected, sent to the visitor.
type JoinRejectedData struct {
	VisitorName, OrganizationName string
	LogoURL                       string
}

// JoinAlreadyMemberData fills KindJoinAlreadyMember, sent to the visitor.
// LoginURL may be empty (the e-mail then says to log in as usual).
type JoinAlreadyMemberData struct {
	VisitorName, OrganizationName, LoginURL string
	LogoURL                                 string
}

// RenewalRequestedData fills KindRenewalRequested, sent to the inviter.
type RenewalRequestedData struct {
	InviterName, InviteeName, InviteeEmail, OrganizationName string
	LogoURL                                                  string
}

// InvitationFailedData fills KindInvitationFailed, sent to the inviter. Reason is the
// provider's explanation, one line.
type InvitationFailedData struct {
	InviterName, InviteeName, InviteeEmail, OrganizationName, Reason string
	LogoURL                                                          string
}

// InvitationExpiredData fills KindInvitationExpired, sent to the inviter.
type InvitationExpiredData struct {
	InviterName, InviteeName, InviteeEmail, OrganizationName string
	ExpiresAt                                                time.Time
	LogoURL                                                  string
}

// Rendered is a ready-to-send e-mail.
type Rendered struct {
	Subject, Text, HTML string
}

// view is what every template sees: the union of the kinds' fields, with
// strings cleaned to one line, plus the rendered subject. Field names are
// those of the data types, so template authors can rely on them.
type view struct {
	InviteeName, InviterName, InviteeEmail, Name string
	VisitorName, VisitorEmail, MemberName        string
	OrganizationName, Role                       string
	// Link is the one link of the e-mail (for KindJoinAlreadyMember, the LoginURL).
	Link, LoginURL string
	// LogoURL is empty unless it was an absolute http(s) URL.
	LogoURL string
	// Message is the visitor's message, cleaned; MessageLines is the same,
	// split into lines (nil when there is no message).
	Message      string
	MessageLines []string
	ExpiresAt    time.Time
	DecideBy     time.Time
	HasExpiry    bool
	HasDecideBy  bool
	Subject      string
	// Reason is why a message could not be delivered (KindInvitationFailed), one line.
	Reason string
}

// linkKinds are the kinds whose e-mail is built around one required link.
var linkKinds = map[Kind]bool{
	KindInvitation: true, KindSetPassword: true, KindJoinConfirm: true, KindJoinRequest: true,
	KindJoinReminder: true, KindJoinApproved: true, KindInvitationReminder: true,
}

var defaultRenderer = sync.OnceValues(func() (*Renderer, error) { return NewRenderer("") })

// Render renders the e-mail of the given kind in locale (e.g. "en",
// "en-GB", "pt_BR"; see Renderer.Render) with the embedded templates only.
// data must be the kind's data type (see the Kind constants) or a pointer
// to it. Links must be absolute http(s) URLs.
func Render(kind Kind, locale string, data any) (Rendered, error) {
	r, err := defaultRenderer()
	if err != nil {
		return Rendered{}, fmt.Errorf("loading mail templates: %w", err)
	}
	return r.Render(kind, locale, data)
}

// Locales lists, sorted, the locales that have embedded templates.
func Locales() []string {
	r, err := defaultRenderer()
	if err != nil {
		return nil
	}
	return r.Locales()
}

// Render renders the e-mail of the given kind. The locale is matched
// exactly ("pt-BR"; case and "_" versus "-" do not matter), then by its
// base language ("pt"), then DefaultLocale is used. data must be the kind's
// data type or a pointer to it. A nil *Renderer uses the embedded templates.
func (r *Renderer) Render(kind Kind, locale string, data any) (Rendered, error) {
	if r == nil {
		return Render(kind, locale, data)
	}
	v, err := makeView(kind, data)
	if err != nil {
		return Rendered{}, err
	}
	t := pickTemplates(r.templates, kind, locale)
	if t == nil {
		return Rendered{}, fmt.Errorf("mail: unknown kind %q", kind)
	}
	return t.execute(kind, v)
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
	l := normalizeLocale(locale)
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

func normalizeLocale(locale string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimSpace(locale), "_", "-"))
}

// asData accepts a T or a non-nil *T.
func asData[T any](kind Kind, data any) (T, error) {
	var zero T
	switch x := data.(type) {
	case T:
		return x, nil
	case *T:
		if x == nil {
			return zero, fmt.Errorf("mail: nil %T", x)
		}
		return *x, nil
	}
	return zero, fmt.Errorf("mail: %s needs %T, got %T", kind, zero, data)
}

func makeView(kind Kind, data any) (view, error) {
	var v view
	var logo string
	switch kind {
	case KindInvitation, KindInvitationReminder:
		d, err := asData[InvitationData](kind, data)
		if err != nil {
			return v, err
		}
		v = view{InviteeName: d.InviteeName, InviterName: d.InviterName, OrganizationName: d.OrganizationName,
			Role: d.Role, Link: d.Link, ExpiresAt: d.ExpiresAt}
		logo = d.LogoURL
	case KindSetPassword:
		d, err := asData[SetPasswordData](kind, data)
		if err != nil {
			return v, err
		}
		v = view{Name: d.Name, OrganizationName: d.OrganizationName, Link: d.Link, ExpiresAt: d.ExpiresAt}
		logo = d.LogoURL
	case KindInvitationAccepted:
		d, err := asData[InvitationAcceptedData](kind, data)
		if err != nil {
			return v, err
		}
		v = view{InviterName: d.InviterName, InviteeName: d.InviteeName, InviteeEmail: d.InviteeEmail,
			OrganizationName: d.OrganizationName, Role: d.Role}
		logo = d.LogoURL
	case KindJoinConfirm:
		d, err := asData[JoinConfirmData](kind, data)
		if err != nil {
			return v, err
		}
		v = view{VisitorName: d.VisitorName, MemberName: d.MemberName, OrganizationName: d.OrganizationName,
			Link: d.Link, ExpiresAt: d.ExpiresAt}
		logo = d.LogoURL
	case KindJoinRequest, KindJoinReminder:
		d, err := asData[JoinRequestData](kind, data)
		if err != nil {
			return v, err
		}
		v = view{MemberName: d.MemberName, VisitorName: d.VisitorName, VisitorEmail: d.VisitorEmail,
			OrganizationName: d.OrganizationName, Link: d.Link, DecideBy: d.DecideBy}
		v.MessageLines = cleanMessage(d.Message)
		v.Message = strings.Join(v.MessageLines, "\n")
		logo = d.LogoURL
	case KindJoinApproved:
		d, err := asData[JoinApprovedData](kind, data)
		if err != nil {
			return v, err
		}
		v = view{VisitorName: d.VisitorName, OrganizationName: d.OrganizationName, Link: d.Link, ExpiresAt: d.ExpiresAt}
		logo = d.LogoURL
	case KindJoinRejected:
		d, err := asData[JoinRejectedData](kind, data)
		if err != nil {
			return v, err
		}
		v = view{VisitorName: d.VisitorName, OrganizationName: d.OrganizationName}
		logo = d.LogoURL
	case KindJoinAlreadyMember:
		d, err := asData[JoinAlreadyMemberData](kind, data)
		if err != nil {
			return v, err
		}
		v = view{VisitorName: d.VisitorName, OrganizationName: d.OrganizationName, LoginURL: d.LoginURL, Link: d.LoginURL}
		logo = d.LogoURL
	case KindRenewalRequested:
		d, err := asData[RenewalRequestedData](kind, data)
		if err != nil {
			return v, err
		}
		v = view{InviterName: d.InviterName, InviteeName: d.InviteeName, InviteeEmail: d.InviteeEmail,
			OrganizationName: d.OrganizationName}
		logo = d.LogoURL
	case KindInvitationFailed:
		d, err := asData[InvitationFailedData](kind, data)
		if err != nil {
			return v, err
		}
		v = view{InviterName: d.InviterName, InviteeName: d.InviteeName, InviteeEmail: d.InviteeEmail,
			OrganizationName: d.OrganizationName, Reason: cleanLine(d.Reason, maxFailureRunes)}
		logo = d.LogoURL
	case KindInvitationExpired:
		d, err := asData[InvitationExpiredData](kind, data)
		if err != nil {
			return v, err
		}
		v = view{InviterName: d.InviterName, InviteeName: d.InviteeName, InviteeEmail: d.InviteeEmail,
			OrganizationName: d.OrganizationName, ExpiresAt: d.ExpiresAt}
		logo = d.LogoURL
	default:
		return v, fmt.Errorf("mail: unknown kind %q", kind)
	}

	for _, s := range []*string{&v.InviteeName, &v.InviterName, &v.InviteeEmail, &v.Name,
		&v.VisitorName, &v.VisitorEmail, &v.MemberName, &v.OrganizationName} {
		*s = cleanName(*s)
	}
	v.Role = cleanName(strings.NewReplacer("_", " ", "-", " ").Replace(v.Role))
	v.HasExpiry = !v.ExpiresAt.IsZero()
	v.HasDecideBy = !v.DecideBy.IsZero()
	if validURL(logo) == nil {
		v.LogoURL = logo
	}

	switch {
	case linkKinds[kind]:
		if err := checkLink(v.Link); err != nil {
			return v, err
		}
	case kind == KindJoinAlreadyMember && v.LoginURL != "":
		if err := validURL(v.LoginURL); err != nil {
			return v, fmt.Errorf("mail: login URL: %w", err)
		}
	}
	return v, nil
}

func checkLink(link string) error {
	if link == "" {
		return errors.New("mail: missing link")
	}
	if err := validURL(link); err != nil {
		return fmt.Errorf("mail: link: %w", err)
	}
	return nil
}

// validURL accepts absolute http(s) URLs without spaces, control
// characters or characters that must be percent-encoded ("<>\^`{|}).
func validURL(s string) error {
	if s == "" {
		return errors.New("empty URL")
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
		strings.ContainsAny(s, "\"<>\\^`{|}") ||
		strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return errors.New("must be an absolute http(s) URL")
	}
	return nil
}

const maxNameRunes = 120

// maxFailureRunes bounds a provider's explanation of a failure.
const maxFailureRunes = 300

// cleanName makes user-supplied text safe to place in a subject or a line of
// text: no control characters, line breaks or bidi overrides, collapsed
// spaces, bounded length.
func cleanName(s string) string { return cleanLine(s, maxNameRunes) }

// cleanLine is cleanName with a length of max runes.
func cleanLine(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		if isBidiControl(r) {
			return -1
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) > max {
		s = strings.TrimSpace(string([]rune(s)[:max])) + "…"
	}
	return s
}

// isBidiControl reports the embedding, override and isolate characters,
// which can make text read differently from what it is.
func isBidiControl(r rune) bool {
	return (r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069')
}

const (
	maxMessageRunes = 2000
	maxMessageLines = 40
)

// cleanMessage turns a visitor's free text into at most maxMessageLines
// lines without control characters, trailing spaces or runs of blank
// lines; nil when nothing is left.
func cleanMessage(s string) []string {
	s = strings.NewReplacer("\r\n", "\n", "\r", "\n", "\u2028", "\n", "\u2029", "\n", "\t", "    ").Replace(s)
	s = strings.Map(func(r rune) rune {
		if r == '\n' {
			return r
		}
		if unicode.IsControl(r) {
			return ' '
		}
		if isBidiControl(r) {
			return -1
		}
		return r
	}, s)
	if utf8.RuneCountInString(s) > maxMessageRunes {
		s = string([]rune(s)[:maxMessageRunes]) + "…"
	}
	var lines []string
	blank := false
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimRightFunc(l, unicode.IsSpace)
		if l == "" {
			blank = len(lines) > 0
			continue
		}
		if blank {
			lines = append(lines, "")
			blank = false
		}
		lines = append(lines, l)
	}
	if len(lines) > maxMessageLines {
		lines = lines[:maxMessageLines]
		lines[maxMessageLines-1] += " …"
	}
	return lines
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
