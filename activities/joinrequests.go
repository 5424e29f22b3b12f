package activities

import (
	"context"
	"fmt"

	"go.temporal.io/sdk/temporal"

	"github.com/usherhq/usher/internal/domain"
	"github.com/usherhq/usher/internal/mail"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/workflows"
)

// RecordJoinRequestStarted marks the join request's workflow as running.
func (a *Activities) RecordJoinRequestStarted(ctx context.Context, id string) error {
	return a.Store.MarkJoinWorkflowStarted(ctx, id)
}

// RecordJoinRequestStatus writes a status change the workflow decided, with its audit event.
func (a *Activities) RecordJoinRequestStatus(ctx context.Context, c workflows.JoinStatusChange) error {
	return forWorkflow(a.Store.ApplyJoinStatusChange(ctx, store.JoinStatusChange{
		EventKey: c.EventKey, JoinRequestID: c.JoinRequestID, Action: string(c.Action),
		From: c.From, To: c.To, Reason: c.Reason, DecideBy: c.DecideBy,
	}))
}

// CheckVisitorMembership reports whether the visitor already belongs to the organization.
func (a *Activities) CheckVisitorMembership(ctx context.Context, id string) (bool, error) {
	jr, err := a.Store.GetJoinRequest(ctx, id)
	if err != nil {
		return false, forWorkflow(err)
	}
	return a.Store.IsMember(ctx, jr.VisitorEmail, jr.OrganizationID)
}

// ApproveJoinRequest makes the visitor a member; see store.ApproveJoinRequest.
func (a *Activities) ApproveJoinRequest(ctx context.Context, r workflows.ApproveActivityRequest) (workflows.JoinApproval, error) {
	out, err := a.Store.ApproveJoinRequest(ctx, r.JoinRequestID, r.Role, r.EventKey)
	if err != nil {
		return workflows.JoinApproval{}, forWorkflow(err)
	}
	return workflows.JoinApproval{UserID: out.UserID, ExistingUser: out.ExistingUser}, nil
}

// SendJoinRequestEmail sends one of a join request's e-mails: the confirmation link to the
// visitor, the decision link (and its reminder) to the member, or a notice to the visitor.
func (a *Activities) SendJoinRequestEmail(ctx context.Context, r workflows.JoinEmailArgs) error {
	purpose, page := "", ""
	switch r.Email {
	case workflows.JoinEmailConfirm:
		purpose, page = store.PurposeConfirm, "join/confirm"
	case workflows.JoinEmailToMember, workflows.JoinEmailReminder:
		purpose, page = store.PurposeDecide, "join-requests"
	case workflows.JoinEmailRejected, workflows.JoinEmailAlreadyMember:
	default:
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("unknown join request e-mail %q", r.Email), "UnknownEmail", nil)
	}
	return a.deliver(ctx, r.DeliveryKey, func() (mail.Message, error) {
		var token string
		var hash []byte
		if purpose != "" {
			token, hash = domain.NewToken()
		}
		c, err := a.Store.BeginJoinDelivery(ctx, r.DeliveryKey, r.Email, r.JoinRequestID, purpose, hash)
		if err != nil {
			return mail.Message{}, err
		}
		jr, member := c.Request, c.Member
		logo := deref(member.LogoURL)
		link := ""
		if page != "" {
			link = a.link(page, token)
		}
		memberName := member.DisplayName
		if memberName == "" {
			memberName = member.Name
		}
		switch r.Email {
		case workflows.JoinEmailConfirm:
			return a.render(mail.KindJoinConfirm, jr.Locale, jr.VisitorEmail, mail.JoinConfirmData{
				VisitorName: jr.VisitorName, MemberName: memberName, OrganizationName: member.OrganizationName,
				Link: link, ExpiresAt: jr.ConfirmExpiresAt, LogoURL: logo,
			})
		case workflows.JoinEmailToMember, workflows.JoinEmailReminder:
			kind := mail.KindJoinRequest
			if r.Email == workflows.JoinEmailReminder {
				kind = mail.KindJoinReminder
			}
			data := mail.JoinRequestData{
				MemberName: memberName, VisitorName: jr.VisitorName, VisitorEmail: jr.VisitorEmail, Message: jr.Message,
				OrganizationName: member.OrganizationName, Link: link, LogoURL: logo,
			}
			if jr.DecideBy != nil {
				data.DecideBy = *jr.DecideBy
			}
			return a.render(kind, deref(member.Locale), member.Email, data)
		case workflows.JoinEmailRejected:
			return a.render(mail.KindJoinRejected, jr.Locale, jr.VisitorEmail, mail.JoinRejectedData{
				VisitorName: jr.VisitorName, OrganizationName: member.OrganizationName, LogoURL: logo,
			})
		default:
			return a.render(mail.KindJoinAlreadyMember, jr.Locale, jr.VisitorEmail, mail.JoinAlreadyMemberData{
				VisitorName: jr.VisitorName, OrganizationName: member.OrganizationName, LoginURL: deref(member.LoginURL), LogoURL: logo,
			})
		}
	})
}

// SendJoinApprovedEmail tells an approved visitor they are in, with a link to set the
// password of their new account.
func (a *Activities) SendJoinApprovedEmail(ctx context.Context, r workflows.JoinApprovedEmailRequest) error {
	c, err := a.Store.GetJoinRequestContext(ctx, r.JoinRequestID)
	if err != nil {
		return forWorkflow(err)
	}
	return a.deliver(ctx, r.DeliveryKey, func() (mail.Message, error) {
		token, hash := domain.NewToken()
		user, err := a.Store.BeginPasswordDelivery(ctx, r.DeliveryKey, r.UserID, nil, hash)
		if err != nil {
			return mail.Message{}, err
		}
		return a.render(mail.KindJoinApproved, c.Request.Locale, user.Email, mail.JoinApprovedData{
			VisitorName: c.Request.VisitorName, OrganizationName: c.Member.OrganizationName,
			Link: a.link("password", token), ExpiresAt: user.CreatedAt.Add(store.PasswordExpiry), LogoURL: deref(c.Member.LogoURL),
		})
	})
}
