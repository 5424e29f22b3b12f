package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.temporal.io/sdk/temporal"

	"github.com/usherhq/usher/internal/domain"
	"github.com/usherhq/usher/internal/sms"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/workflows"
)

// smsInvitationText is the invitation SMS per language, before its link: with an inviter's
// name, and without. Kept short: one SMS segment with the link.
var smsInvitationText = map[string][2]string{
	"en": {"%s invited you to join %s. Accept: ", "You're invited to join %s. Accept: "},
	"ru": {"%s приглашает вас в %s. Принять: ", "Вас приглашают в %s. Принять: "},
	"de": {"%s lädt Sie zu %s ein. Annehmen: ", "Sie sind zu %s eingeladen. Annehmen: "},
	"fr": {"%s vous invite à rejoindre %s. Accepter : ", "Vous êtes invité·e à rejoindre %s. Accepter : "},
	"es": {"%s le invita a unirse a %s. Aceptar: ", "Le invitan a unirse a %s. Aceptar: "},
}

// sendInvitationSMS is SendInvitationEmail for an invitation by SMS: the same recording
// before and after, with a short link to the same hosted page.
func (a *Activities) sendInvitationSMS(ctx context.Context, r workflows.DeliveryRequest, inv store.Invitation) error {
	if a.SMS == nil {
		return refused("SMS is not configured on this server")
	}
	if inv.Phone == nil {
		return refused("no phone number on file")
	}
	ic, err := a.Store.GetInvitationContext(ctx, inv.ID)
	if err != nil {
		return forWorkflow(err)
	}
	lang, _, _ := strings.Cut(inv.Locale, "-")
	formats, ok := smsInvitationText[lang]
	if !ok {
		formats = smsInvitationText[domain.DefaultLocale]
	}
	text := fmt.Sprintf(formats[1], clip(ic.OrganizationName, 40))
	if ic.InviterName != "" {
		text = fmt.Sprintf(formats[0], clip(ic.InviterName, 40), clip(ic.OrganizationName, 40))
	}
	// Everything before the token: how a lost send is recognised at the provider.
	prefix := text + strings.TrimRight(a.PublicURL, "/") + "/i/"
	probe := sms.Message{DeliveryID: r.DeliveryKey, To: *inv.Phone, Body: prefix}

	d, found, err := a.Store.GetDelivery(ctx, r.DeliveryKey)
	if err != nil {
		return err
	}
	if found {
		switch d.Status {
		case domain.DeliverySent:
			return nil
		case domain.DeliveryFailed:
			return refused(deref(d.LastError))
		case domain.DeliverySending:
			probe.NotBefore = d.CreatedAt
			providerID, accepted, err := a.SMS.FindSent(ctx, probe)
			if err != nil {
				return smsTransient(err)
			}
			if accepted {
				return a.Store.FinishDelivery(ctx, r.DeliveryKey, providerID)
			}
		}
	}

	token, hash := domain.NewToken()
	if _, err := a.Store.BeginInvitationDelivery(ctx, r.DeliveryKey, inv.ID, hash); err != nil {
		if errors.Is(err, store.ErrSuperseded) {
			return temporal.NewNonRetryableApplicationError("a newer decision replaced this message", workflows.ErrDeliverySuperseded, nil)
		}
		return forWorkflow(err)
	}
	msg := sms.Message{DeliveryID: r.DeliveryKey, To: *inv.Phone, Body: prefix + token}
	providerID, sendErr := a.SMS.Send(ctx, msg)
	if sendErr == nil {
		return a.Store.FinishDelivery(ctx, r.DeliveryKey, providerID)
	}
	var permanent *sms.PermanentError
	isPermanent := errors.As(sendErr, &permanent)
	if err := a.Store.RecordDeliveryError(ctx, r.DeliveryKey, sendErr.Error(), isPermanent); err != nil {
		return err
	}
	if isPermanent {
		return refused(sendErr.Error())
	}
	return smsTransient(sendErr)
}

func smsTransient(err error) error {
	var te *sms.TransientError
	if errors.As(err, &te) && te.RetryAfter > 0 {
		return temporal.NewApplicationErrorWithOptions(te.Error(), workflows.ErrRateLimited, temporal.ApplicationErrorOptions{NextRetryDelay: te.RetryAfter})
	}
	return err
}

func clip(s string, n int) string {
	r := []rune(strings.Join(strings.Fields(s), " "))
	if len(r) <= n {
		return string(r)
	}
	return string(r[:n-1]) + "…"
}
