package activities

import (
	"context"

	"github.com/usherhq/usher/internal/domain"
	"github.com/usherhq/usher/internal/mail"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/workflows"
)

// smsReminderText is the reminder SMS per language, before its link (see smsInvitationText).
var smsReminderText = map[string][2]string{
	"en": {"Reminder: %s invited you to join %s. Accept: ", "Reminder: you're invited to join %s. Accept: "},
	"ru": {"Напоминание: %s приглашает вас в %s. Принять: ", "Напоминание: вас приглашают в %s. Принять: "},
	"de": {"Erinnerung: %s lädt Sie zu %s ein. Annehmen: ", "Erinnerung: Sie sind zu %s eingeladen. Annehmen: "},
	"fr": {"Rappel : %s vous invite à rejoindre %s. Accepter : ", "Rappel : vous êtes invité·e à rejoindre %s. Accepter : "},
	"es": {"Recordatorio: %s le invita a unirse a %s. Aceptar: ", "Recordatorio: le invitan a unirse a %s. Aceptar: "},
}

// InvitationSettings tells a starting invitation run the reminder schedule and notices
// configured on this worker.
func (a *Activities) InvitationSettings(ctx context.Context) (workflows.InvitationSettings, error) {
	return a.Invitations, nil
}

// SendInvitationReminder reminds the invitee, by the invitation's channel, with a fresh
// link; like a resend, issuing it retires the links sent before.
func (a *Activities) SendInvitationReminder(ctx context.Context, r workflows.DeliveryRequest) error {
	return a.sendInvitationLink(ctx, r, mail.KindInvitationReminder, smsReminderText)
}

// NotifyInviterOfFailure tells the inviter, if there is one, that the invitation could not
// be delivered, and why.
func (a *Activities) NotifyInviterOfFailure(ctx context.Context, r workflows.DeliveryRequest) error {
	return a.tellInviter(ctx, r, mail.KindInvitationFailed, func(ic store.InvitationContext) any {
		inv := ic.Invitation
		reason := deref(inv.FailureReason)
		if reason == "" {
			reason = deref(inv.DeliveryLastError)
		}
		return mail.InvitationFailedData{
			InviterName: ic.InviterName, InviteeName: inv.Name, InviteeEmail: inv.Email,
			OrganizationName: ic.OrganizationName, Reason: reason, LogoURL: deref(ic.LogoURL),
		}
	})
}

// NotifyInviterOfExpiry tells the inviter, if there is one, that the invitation expired
// without being accepted.
func (a *Activities) NotifyInviterOfExpiry(ctx context.Context, r workflows.DeliveryRequest) error {
	return a.tellInviter(ctx, r, mail.KindInvitationExpired, func(ic store.InvitationContext) any {
		inv := ic.Invitation
		data := mail.InvitationExpiredData{
			InviterName: ic.InviterName, InviteeName: inv.Name, InviteeEmail: inv.Email,
			OrganizationName: ic.OrganizationName, LogoURL: deref(ic.LogoURL),
		}
		if inv.ExpiresAt != nil {
			data.ExpiresAt = *inv.ExpiresAt
		}
		return data
	})
}

// tellInviter sends the inviter, if the invitation names one, the e-mail kind made from
// the invitation by data. Inviters get English: Usher knows the invitee's language only.
func (a *Activities) tellInviter(ctx context.Context, r workflows.DeliveryRequest, kind mail.Kind, data func(store.InvitationContext) any) error {
	ic, err := a.Store.GetInvitationContext(ctx, r.InvitationID)
	if err != nil {
		return forWorkflow(err)
	}
	if ic.InviterEmail == "" {
		return nil
	}
	return a.deliver(ctx, r.DeliveryKey, func() (mail.Message, error) {
		if err := a.Store.BeginPlainDelivery(ctx, r.DeliveryKey, string(kind), &r.InvitationID, ic.Invitation.InviterID); err != nil {
			return mail.Message{}, err
		}
		return a.render(kind, domain.DefaultLocale, ic.InviterEmail, data(ic))
	})
}
