package api

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/usherhq/usher/internal/domain"
	"github.com/usherhq/usher/workflows"
)

// The invitee's pages: /invite/{token} (see and accept), /invite/{token}/renewal (ask for
// a new one), /welcome, /password/{token}.

// requestRenewal asks the inviter for a new invitation in place of an expired or revoked
// one, by e-mail, at most once a day per invitation.
func (s *Server) requestRenewal(ctx context.Context, token string) error {
	view, err := s.viewInvitation(ctx, token)
	if err != nil {
		return err
	}
	switch view.Status {
	case domain.StatusExpired, domain.StatusRevoked:
		return workflows.StartRenewalRequest(ctx, s.Temporal, view.Invitation.ID, time.Now())
	}
	return domain.Errorf(domain.CodeInvalidState, "only an expired or revoked invitation can be asked for again").
		WithDetail("status", string(view.Status))
}

// invitePage is the D of invite.html.tmpl.
type invitePage struct {
	// Token is the link's token, for the form's action.
	Token string
	// Inviter is who invited them (may be empty: then the organization did).
	Inviter      string
	Organization string
	Role         string
	ExpiresAt    *time.Time
	// ExistingUser: an account with the invitation's address exists; accepting adds the
	// organization to it, and the form asks for nothing.
	ExistingUser bool
	// EmailHint is the invited address, partly hidden (a link can be forwarded).
	EmailHint string
	// Name prefills the name field.
	Name            string
	NameInvalid     bool
	PasswordInvalid bool
}

// linkPage is the D of link.html.tmpl: a link that cannot be used (any more), why, and
// what to do.
type linkPage struct {
	// Kind: expired, revoked, used, replaced, invalid, closed, password_invalid,
	// join_invalid, join_expired, join_cancelled, join_closed.
	Kind  string
	Title string
	Body  string
	Hint  string
	// RenewToken, if set, offers the "Ask for a new invitation" form (POST
	// /invite/{RenewToken}/renewal).
	RenewToken string
	// LoginURL, if set, offers a "Sign in" link.
	LoginURL string
	// StartOver, if set, links to where the journey can start again (e.g. /join).
	StartOver string
}

// renewalPage is the D of renewal.html.tmpl.
type renewalPage struct {
	AskedWho     string
	Organization string
}

// welcomePage is the D of welcome.html.tmpl.
type welcomePage struct {
	Organization string
	ExistingUser bool
	// PasswordMail: a new account without a password; a set-password e-mail is on its way.
	PasswordMail bool
}

// passwordPage is the D of password.html.tmpl.
type passwordPage struct {
	Token           string
	PasswordInvalid bool
}

type welcomeFlash struct {
	Org      string `json:"o"`
	Logo     string `json:"g,omitempty"`
	Existing bool   `json:"e"`
	Mail     bool   `json:"m"`
	Lang     string `json:"l"`
}

func (p *site) showInvitation(c *gin.Context) {
	token := c.Param("token")
	view, err := p.s.viewInvitation(c, token)
	if err != nil {
		p.invitationLinkError(c, err)
		return
	}
	if view.Status != domain.StatusPending {
		p.invitationClosed(c, token, view, view.Status)
		return
	}
	p.render(c, "invite", p.invitePage(c, token, view))
}

func (p *site) invitePage(c *gin.Context, token string, view InvitationView) *page {
	inv, ic := view.Invitation, view.Context
	d := p.newPage(c, p.language(c, inv.Locale), newBrand(ic.OrganizationName, ic.LogoURL), invitePage{
		Token: token, Inviter: ic.InviterName, Organization: ic.OrganizationName, Role: inv.Role,
		ExpiresAt: inv.ExpiresAt, ExistingUser: view.ExistingUser, EmailHint: domain.EmailHint(inv.Email), Name: inv.Name,
	})
	// Accepting may end on the app's page (a 303 after the POST); browsers apply the CSP's
	// form-action to that redirect, so the app's origin must be allowed too.
	for _, u := range []*string{inv.RedirectURL, ic.LoginURL} {
		if o := origin(safeRedirect(u)); o != "" && !containsString(d.formTargets, o) {
			d.formTargets = append(d.formTargets, o)
		}
	}
	return d
}

func (p *site) acceptInvitation(c *gin.Context) {
	token := c.Param("token")
	view, err := p.s.viewInvitation(c, token)
	if err != nil {
		p.invitationLinkError(c, err)
		return
	}
	if view.Status != domain.StatusPending {
		p.invitationClosed(c, token, view, view.Status)
		return
	}

	d := p.invitePage(c, token, view)
	form := d.D.(invitePage)
	name, password := "", ""
	if !view.ExistingUser {
		// An existing account keeps its name and password; the form asks for neither.
		name = strings.TrimSpace(c.PostForm("name"))
		password = c.PostForm("password")
		form.Name = name
		switch {
		case name == "":
			form.NameInvalid = true
			d.Alert, _ = d.T("err.name_required")
		case password != c.PostForm("password_repeat"):
			form.PasswordInvalid = true
			d.Alert, _ = d.T("err.password_mismatch")
		}
		if d.Alert != "" {
			d.D, d.status = form, http.StatusBadRequest
			p.render(c, "invite", d)
			return
		}
	}

	out, err := p.s.acceptByToken(c, token, name, password)
	if err != nil {
		code := errorCode(err)
		switch code {
		case domain.CodeWeakPassword:
			form.PasswordInvalid = true
			d.Alert, _ = d.T("err.password_weak", MinPasswordLength, MaxPasswordBytes)
		case domain.CodeInvalidRequest:
			form.NameInvalid = true
			d.Alert, _ = d.T("err.name_invalid", maxNameLength)
		case domain.CodeInvalidToken, domain.CodeInvitationNotFound:
			p.invitationLinkError(c, err)
			return
		case domain.CodeInvitationExpired:
			p.invitationClosed(c, token, view, domain.StatusExpired)
			return
		case domain.CodeInvitationRevoked:
			p.invitationClosed(c, token, view, domain.StatusRevoked)
			return
		case domain.CodeInvitationUsed, domain.CodeAlreadyMember:
			p.invitationClosed(c, token, view, domain.StatusAccepted)
			return
		default:
			p.failed(c, view.Invitation.Locale, err)
			return
		}
		d.D, d.status = form, code.HTTPStatus()
		p.render(c, "invite", d)
		return
	}

	if next := safeRedirect(out.RedirectURL); next != "" {
		c.Redirect(http.StatusSeeOther, next)
		return
	}
	p.setFlash(c, welcomeCookie, "/welcome", welcomeFlash{
		Org: view.Context.OrganizationName, Logo: d.logo(), Existing: out.ExistingUser, Mail: !out.ExistingUser && !out.PasswordSet, Lang: d.Lang,
	})
	c.Redirect(http.StatusSeeOther, "/welcome")
}

func (p *site) askForRenewal(c *gin.Context) {
	token := c.Param("token")
	view, err := p.s.viewInvitation(c, token)
	if err != nil {
		p.invitationLinkError(c, err)
		return
	}
	if err := p.s.requestRenewal(c, token); err != nil {
		switch errorCode(err) {
		case domain.CodeInvalidToken, domain.CodeInvitationNotFound:
			p.invitationLinkError(c, err)
		case domain.CodeInvalidState:
			// Renewed meanwhile, or accepted: the invitation's own page says what is next.
			c.Redirect(http.StatusSeeOther, "/invite/"+token)
		default:
			p.failed(c, view.Invitation.Locale, err)
		}
		return
	}
	ic := view.Context
	p.render(c, "renewal", p.newPage(c, p.language(c, view.Invitation.Locale), newBrand(ic.OrganizationName, ic.LogoURL),
		renewalPage{AskedWho: inviterOrOrganization(ic.InviterName, ic.OrganizationName), Organization: ic.OrganizationName}))
}

func inviterOrOrganization(inviter, org string) string {
	if inviter != "" {
		return inviter
	}
	return org
}

// invitationLinkError explains a link that leads to no invitation: unknown, or replaced by
// a newer e-mail.
func (p *site) invitationLinkError(c *gin.Context, err error) {
	switch errorCode(err) {
	case domain.CodeInvalidToken, domain.CodeInvitationNotFound:
		kind := "invalid"
		if errorDetail(err, "reason") == "replaced" {
			kind = "replaced"
		}
		p.linkProblem(c, "", nil, http.StatusNotFound, linkPage{Kind: kind})
	default:
		p.failed(c, "", err)
	}
}

// invitationClosed explains an invitation that can no longer be accepted through this link.
func (p *site) invitationClosed(c *gin.Context, token string, view InvitationView, status domain.Status) {
	inv, ic := view.Invitation, view.Context
	who := inviterOrOrganization(ic.InviterName, ic.OrganizationName)
	lp := linkPage{Kind: "closed"}
	code := domain.CodeInvalidState
	switch status {
	case domain.StatusExpired:
		lp, code = linkPage{Kind: "expired", RenewToken: token}, domain.CodeInvitationExpired
	case domain.StatusRevoked:
		lp, code = linkPage{Kind: "revoked", RenewToken: token}, domain.CodeInvitationRevoked
	case domain.StatusAccepted:
		lp, code = linkPage{Kind: "used", LoginURL: safeRedirect(ic.LoginURL)}, domain.CodeInvitationUsed
	}
	p.linkProblem(c, inv.Locale, newBrand(ic.OrganizationName, ic.LogoURL), code.HTTPStatus(), lp, ic.OrganizationName, who)
}

// linkProblem renders link.html.tmpl with the texts of kind: link.<kind>.title, .body and
// .hint, each given args.
func (p *site) linkProblem(c *gin.Context, locale string, org *brand, status int, lp linkPage, args ...any) {
	d := p.newPage(c, p.language(c, locale), org, nil)
	d.status = status
	lp.Title, _ = d.T("link." + lp.Kind + ".title")
	lp.Body, _ = d.T("link."+lp.Kind+".body", args...)
	if _, err := d.T("link." + lp.Kind + ".hint"); err == nil {
		lp.Hint, _ = d.T("link."+lp.Kind+".hint", args...)
	}
	d.D = lp
	p.render(c, "link", d)
}

func (p *site) showWelcome(c *gin.Context) {
	var f welcomeFlash
	ok := p.readFlash(c, welcomeCookie, &f)
	d := p.newPage(c, p.language(c, f.Lang), nil, welcomePage{})
	if ok {
		d.Org = newBrand(f.Org, &f.Logo)
		d.D = welcomePage{Organization: f.Org, ExistingUser: f.Existing, PasswordMail: f.Mail}
	}
	p.render(c, "welcome", d)
}

func (p *site) showPassword(c *gin.Context) {
	token := c.Param("token")
	user, err := p.s.viewPasswordToken(c, token)
	if errorCode(err) == domain.CodeInvalidToken {
		p.linkProblem(c, "", nil, http.StatusNotFound, linkPage{Kind: "password_invalid"})
		return
	}
	if err != nil {
		p.failed(c, "", err)
		return
	}
	locale := ""
	if user.Locale != nil {
		locale = *user.Locale
	}
	p.render(c, "password", p.newPage(c, p.language(c, locale), nil, passwordPage{Token: token}))
}

func (p *site) choosePassword(c *gin.Context) {
	token := c.Param("token")
	d := p.newPage(c, p.language(c, ""), nil, nil)
	password := c.PostForm("password")
	if password != c.PostForm("password_repeat") {
		d.Alert, _ = d.T("err.password_mismatch")
		d.D, d.status = passwordPage{Token: token, PasswordInvalid: true}, http.StatusBadRequest
		p.render(c, "password", d)
		return
	}
	if _, err := p.s.setPasswordByToken(c, token, password); err != nil {
		switch code := errorCode(err); code {
		case domain.CodeWeakPassword:
			d.Alert, _ = d.T("err.password_weak", MinPasswordLength, MaxPasswordBytes)
			d.D, d.status = passwordPage{Token: token, PasswordInvalid: true}, code.HTTPStatus()
			p.render(c, "password", d)
		case domain.CodeInvalidToken:
			p.linkProblem(c, "", nil, http.StatusNotFound, linkPage{Kind: "password_invalid"})
		default:
			p.failed(c, "", err)
		}
		return
	}
	p.render(c, "password_done", d)
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
