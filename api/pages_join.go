package api

import (
	"net/http"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/usherhq/usher/internal/domain"
)

// The join pages: a visitor finds a member by e-mail (/join), asks them for an invitation
// (/join/{member_id}), confirms their own address (/join/confirm/{token}); the member
// decides (/join-requests/{token}).

// joinSearchPage is the D of join_search.html.tmpl.
type joinSearchPage struct {
	Email        string
	EmailInvalid bool
	// Found is the member with a public profile and that address; NotFound says the search
	// ran and found nobody.
	Found    *MemberProfile
	NotFound bool
}

// joinFormPage is the D of join_form.html.tmpl.
type joinFormPage struct {
	Member         MemberProfile
	Name           string
	Email          string
	Message        string
	NameInvalid    bool
	EmailInvalid   bool
	MessageInvalid bool
}

// joinSentPage is the D of join_sent.html.tmpl; the same whatever happened to the address.
type joinSentPage struct {
	Email  string
	Member string
}

// joinRequestPage is the D of join_confirm, join_confirmed, join_decide and join_decided.
type joinRequestPage struct {
	Token   string
	Request JoinRequestView
	// Already: confirmed or decided before this visit.
	Already bool
	// Roles a member may give (join_decide), and the one chosen.
	Roles []string
	Role  string
	// Decision is "approve" or "reject" (join_decided).
	Decision string
}

func (p *site) showJoinSearch(c *gin.Context) {
	p.render(c, "join_search", p.newPage(c, p.language(c, ""), nil, joinSearchPage{}))
}

func (p *site) searchJoin(c *gin.Context) {
	email := strings.TrimSpace(c.PostForm("email"))
	d := p.newPage(c, p.language(c, ""), nil, nil)
	form := joinSearchPage{Email: email}
	if email == "" {
		form.EmailInvalid = true
		d.Alert, _ = d.T("err.email_required")
		d.D, d.status = form, http.StatusBadRequest
		p.render(c, "join_search", d)
		return
	}
	profile, err := p.s.searchMember(c, c.ClientIP(), email)
	switch code := errorCode(err); {
	case err == nil:
		form.Found = &profile
		d.Org = newBrand(profile.OrganizationName, profile.LogoURL)
	case code == domain.CodeMemberNotFound:
		form.NotFound = true
	case code == domain.CodeInvalidEmail, code == domain.CodeInvalidRequest:
		form.EmailInvalid = true
		d.Alert, _ = d.T("err.email_invalid")
		d.status = http.StatusBadRequest
	case code == domain.CodeRateLimited:
		d.Alert, _ = d.T("err.rate_limited")
		d.status = http.StatusTooManyRequests
		c.Header("Retry-After", "60")
	default:
		p.failed(c, "", err)
		return
	}
	d.D = form
	p.render(c, "join_search", d)
}

func (p *site) showJoinForm(c *gin.Context) {
	profile, err := p.s.memberProfile(c, c.Param("member_id"))
	if err != nil {
		p.memberError(c, err)
		return
	}
	p.render(c, "join_form", p.newPage(c, p.language(c, ""), newBrand(profile.OrganizationName, profile.LogoURL),
		joinFormPage{Member: profile}))
}

func (p *site) fileJoinRequest(c *gin.Context) {
	profile, err := p.s.memberProfile(c, c.Param("member_id"))
	if err != nil {
		p.memberError(c, err)
		return
	}
	lang := p.language(c, "")
	d := p.newPage(c, lang, newBrand(profile.OrganizationName, profile.LogoURL), nil)
	form := joinFormPage{
		Member: profile, Name: strings.TrimSpace(c.PostForm("name")), Email: strings.TrimSpace(c.PostForm("email")),
		Message: strings.TrimSpace(c.PostForm("message")),
	}
	switch {
	case form.Name == "":
		form.NameInvalid = true
		d.Alert, _ = d.T("err.name_required")
	case form.Email == "":
		form.EmailInvalid = true
		d.Alert, _ = d.T("err.email_required")
	}
	if d.Alert == "" {
		_, err = p.s.requestToJoin(c, c.ClientIP(), JoinRequestInput{
			MemberID: profile.MemberID, Name: form.Name, Email: form.Email, Message: form.Message, Locale: lang,
		})
		switch code := errorCode(err); {
		case code == domain.CodeInvalidEmail:
			form.EmailInvalid = true
			d.Alert, _ = d.T("err.email_invalid")
		case code == domain.CodeInvalidRequest:
			switch errorDetail(err, "field") {
			case "email":
				form.EmailInvalid = true
				d.Alert, _ = d.T("err.email_invalid")
			case "message":
				form.MessageInvalid = true
				d.Alert, _ = d.T("err.message_invalid")
			case "name":
				form.NameInvalid = true
				d.Alert, _ = d.T("err.name_invalid", maxNameLength)
			default:
				d.Alert, _ = d.T("err.form_invalid")
			}
		case code == domain.CodeRateLimited:
			d.Alert, _ = d.T("err.rate_limited")
			d.status = http.StatusTooManyRequests
			c.Header("Retry-After", "60")
		case code == domain.CodeMemberNotFound:
			p.memberError(c, err)
			return
		case err != nil && (code == "" || code == domain.CodeTemporarilyUnavailable || code == domain.CodeInternal):
			p.failed(c, "", err)
			return
		}
		// Anything else about the address (a member already, a request already open, …)
		// shows the same page as a success: the page must not tell what it knows of it.
	}
	if d.Alert != "" {
		if d.status == http.StatusOK {
			d.status = http.StatusBadRequest
		}
		d.D = form
		p.render(c, "join_form", d)
		return
	}
	d.D = joinSentPage{Email: form.Email, Member: profile.DisplayName}
	p.render(c, "join_sent", d)
}

func (p *site) memberError(c *gin.Context, err error) {
	if errorCode(err) == domain.CodeMemberNotFound {
		p.message(c, http.StatusNotFound, "", "error.member_not_found.title", "error.member_not_found.body")
		return
	}
	p.failed(c, "", err)
}

func (p *site) showJoinConfirm(c *gin.Context) {
	token := c.Param("token")
	view, err := p.s.viewJoinRequest(c, token, "confirm")
	if err != nil {
		p.joinLinkError(c, "", err)
		return
	}
	switch domain.JoinStatus(view.Status) {
	case domain.JoinUnconfirmed:
		p.renderJoin(c, "join_confirm", view.Locale, http.StatusOK, joinRequestPage{Token: token, Request: view})
	case domain.JoinPending, domain.JoinApproved, domain.JoinRejected:
		p.renderJoin(c, "join_confirmed", view.Locale, http.StatusOK, joinRequestPage{Request: view, Already: true})
	default:
		p.joinClosed(c, view.Locale, view, false)
	}
}

func (p *site) confirmJoin(c *gin.Context) {
	token := c.Param("token")
	view, err := p.s.viewJoinRequest(c, token, "confirm")
	if err != nil {
		p.joinLinkError(c, "", err)
		return
	}
	confirmed, err := p.s.confirmJoinRequest(c, token)
	switch errorCode(err) {
	case "":
		if err != nil {
			p.failed(c, view.Locale, err)
			return
		}
		p.renderJoin(c, "join_confirmed", view.Locale, http.StatusOK, joinRequestPage{Request: confirmed})
	case domain.CodeAlreadyConfirmed:
		p.renderJoin(c, "join_confirmed", view.Locale, http.StatusOK, joinRequestPage{Request: view, Already: true})
	case domain.CodeJoinRequestExpired:
		view.Status = string(domain.JoinExpired)
		p.joinClosed(c, view.Locale, view, false)
	case domain.CodeInvalidState:
		p.joinClosed(c, view.Locale, view, false)
	case domain.CodeInvalidToken, domain.CodeJoinRequestNotFound:
		p.joinLinkError(c, view.Locale, err)
	default:
		p.failed(c, view.Locale, err)
	}
}

// The decision page is in the member's language (their browser's): the request's locale
// is the visitor's.

func (p *site) showJoinDecision(c *gin.Context) {
	token := c.Param("token")
	view, err := p.s.viewJoinRequest(c, token, "decide")
	if err != nil {
		p.joinLinkError(c, "", err)
		return
	}
	switch domain.JoinStatus(view.Status) {
	case domain.JoinPending:
		p.renderJoin(c, "join_decide", "", http.StatusOK, joinRequestPage{Token: token, Request: view, Roles: JoinRoles, Role: JoinRoles[0]})
	case domain.JoinApproved, domain.JoinRejected:
		p.renderJoin(c, "join_decided", "", http.StatusOK, joinRequestPage{Request: view, Already: true, Decision: decisionOf(view.Status)})
	default:
		p.joinClosed(c, "", view, true)
	}
}

func (p *site) decideJoin(c *gin.Context) {
	token := c.Param("token")
	view, err := p.s.viewJoinRequest(c, token, "decide")
	if err != nil {
		p.joinLinkError(c, "", err)
		return
	}
	decision, role := c.PostForm("decision"), c.PostForm("role")
	if role == "" {
		role = JoinRoles[0]
	}
	form := joinRequestPage{Token: token, Request: view, Roles: JoinRoles, Role: role}
	if (decision != "approve" && decision != "reject") || !slices.Contains(JoinRoles, role) {
		d := p.newPage(c, p.language(c, ""), newBrand(view.OrganizationName, view.LogoURL), form)
		d.Alert, _ = d.T("err.decision")
		d.status = http.StatusBadRequest
		p.render(c, "join_decide", d)
		return
	}
	decided, err := p.s.decideJoinRequest(c, token, decision, role)
	switch errorCode(err) {
	case "":
		if err != nil {
			p.failed(c, "", err)
			return
		}
		p.renderJoin(c, "join_decided", "", http.StatusOK, joinRequestPage{Request: decided, Decision: decision, Role: role})
	case domain.CodeAlreadyDecided:
		status, _ := errorDetail(err, "status").(string)
		if status == "" {
			status = view.Status
		}
		p.renderJoin(c, "join_decided", "", http.StatusOK, joinRequestPage{Request: view, Already: true, Decision: decisionOf(status)})
	case domain.CodeJoinRequestExpired:
		view.Status = string(domain.JoinExpired)
		p.joinClosed(c, "", view, true)
	case domain.CodeInvalidState:
		p.joinClosed(c, "", view, true)
	case domain.CodeInvalidToken, domain.CodeJoinRequestNotFound:
		p.joinLinkError(c, "", err)
	default:
		p.failed(c, "", err)
	}
}

func decisionOf(status string) string {
	if domain.JoinStatus(status) == domain.JoinApproved {
		return "approve"
	}
	return "reject"
}

func (p *site) renderJoin(c *gin.Context, name, locale string, status int, data joinRequestPage) {
	d := p.newPage(c, p.language(c, locale), newBrand(data.Request.OrganizationName, data.Request.LogoURL), data)
	d.status = status
	p.render(c, name, d)
}

func (p *site) joinLinkError(c *gin.Context, locale string, err error) {
	switch errorCode(err) {
	case domain.CodeInvalidToken, domain.CodeJoinRequestNotFound:
		p.linkProblem(c, locale, nil, http.StatusNotFound, linkPage{Kind: "join_invalid"})
	case domain.CodeJoinRequestExpired:
		p.linkProblem(c, locale, nil, http.StatusGone, linkPage{Kind: "join_expired", StartOver: "/join"})
	default:
		p.failed(c, locale, err)
	}
}

// joinClosed explains a request nobody can act on any more (expired, cancelled, …).
func (p *site) joinClosed(c *gin.Context, locale string, view JoinRequestView, member bool) {
	org := newBrand(view.OrganizationName, view.LogoURL)
	switch domain.JoinStatus(view.Status) {
	case domain.JoinExpired:
		lp := linkPage{Kind: "join_expired", StartOver: "/join"}
		if member {
			lp = linkPage{Kind: "join_expired_member"}
		}
		p.linkProblem(c, locale, org, http.StatusGone, lp, view.VisitorName, view.MemberName)
	case domain.JoinCancelled:
		p.linkProblem(c, locale, org, http.StatusGone, linkPage{Kind: "join_cancelled"}, view.VisitorName, view.MemberName)
	default:
		p.linkProblem(c, locale, org, http.StatusConflict, linkPage{Kind: "join_closed"}, view.VisitorName, view.MemberName)
	}
}
