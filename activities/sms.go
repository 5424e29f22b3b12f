package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

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
	return a.sendOnce(ctx, r.DeliveryKey, outbox{
		findSent: func(ctx context.Context, d store.Delivery) (string, bool, error) {
			return a.SMS.FindSent(ctx, sms.Message{DeliveryID: r.DeliveryKey, To: *inv.Phone, Body: prefix, NotBefore: d.CreatedAt})
		},
		prepare: func() (func(context.Context) (string, error), error) {
			token, hash := domain.NewToken()
			if _, err := a.Store.BeginInvitationDelivery(ctx, r.DeliveryKey, inv.ID, hash); err != nil {
				return nil, err
			}
			msg := sms.Message{DeliveryID: r.DeliveryKey, To: *inv.Phone, Body: prefix + token}
			return func(ctx context.Context) (string, error) { return a.SMS.Send(ctx, msg) }, nil
		},
		classify: func(err error) (bool, time.Duration) {
			var permanent *sms.PermanentError
			var te *sms.TransientError
			if errors.As(err, &te) {
				return false, te.RetryAfter
			}
			return errors.As(err, &permanent), 0
		},
	})
}

func clip(s string, n int) string {
	r := []rune(strings.Join(strings.Fields(s), " "))
	if len(r) <= n {
		return string(r)
	}
	return string(r[:n-1]) + "…"
}
