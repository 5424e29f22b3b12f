package activities

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/usherhq/usher/internal/domain"
	"github.com/usherhq/usher/internal/mail"
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
func (a *Activities) sendInvitationSMS(ctx context.Context, r workflows.DeliveryRequest, inv store.Invitation, kind mail.Kind, texts map[string][2]string) error {
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
	formats, ok := texts[lang]
	if !ok {
		formats = texts[domain.DefaultLocale]
	}
	text := fmt.Sprintf(formats[1], clip(ic.OrganizationName, 40))
	if ic.InviterName != "" {
		text = fmt.Sprintf(formats[0], clip(ic.InviterName, 40), clip(ic.OrganizationName, 40))
	}
	// Everything before the token: how a lost send is recognised at the provider.
	prefix := text + strings.TrimRight(a.PublicURL, "/") + "/i/"
	return a.sendOnce(ctx, r.DeliveryKey, outbox{
		channel: "sms", provider: "twilio", acceptedStatus: http.StatusCreated,
		findSent: func(ctx context.Context, d store.Delivery) (string, bool, error) {
			return a.SMS.FindSent(ctx, sms.Message{DeliveryID: r.DeliveryKey, To: *inv.Phone, Body: prefix, NotBefore: d.CreatedAt})
		},
		prepare: func() (func(context.Context) (string, error), error) {
			token, hash := domain.NewToken()
			if _, err := a.Store.BeginInvitationLinkDelivery(ctx, r.DeliveryKey, string(kind), inv.ID, hash); err != nil {
				return nil, err
			}
			msg := sms.Message{DeliveryID: r.DeliveryKey, To: *inv.Phone, Body: prefix + token}
			return func(ctx context.Context) (string, error) { return a.SMS.Send(ctx, msg) }, nil
		},
		classify: func(err error) sendFailure {
			var permanent *sms.PermanentError
			var te *sms.TransientError
			switch {
			case errors.As(err, &te):
				return sendFailure{retryAfter: te.RetryAfter, statusCode: te.StatusCode}
			case errors.As(err, &permanent):
				return sendFailure{permanent: true, statusCode: permanent.StatusCode}
			}
			return sendFailure{}
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
