// Package activities adapts Usher's workflows to the outside world: MySQL through the
// store, e-mail through a mail.Sender. Each activity is safe to retry: a retry after a crash
// neither creates a second account nor sends an e-mail the provider already accepted.
package activities

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/usherhq/usher/internal/domain"
	"github.com/usherhq/usher/internal/mail"
	"github.com/usherhq/usher/internal/metrics"
	"github.com/usherhq/usher/internal/sms"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/webhooks"
	"github.com/usherhq/usher/workflows"
)

// Activities holds what the activities need.
type Activities struct {
	Store *store.Store
	Mail  mail.Sender
	// PublicURL is the base of the links in e-mails, e.g. https://usher.example.com.
	PublicURL string
	// Templates renders e-mails; nil means the embedded templates.
	Templates *mail.Renderer
	// Temporal lets batch activities start and update invitation workflows.
	Temporal client.Client
	// SMS sends invitations by text message; nil when no SMS provider is configured.
	SMS sms.Sender
	// Metrics counts sends by result and provider status; nil counts nothing.
	Metrics *metrics.Metrics
	// Invitations are the reminder schedule and notices every invitation run follows
	// (read by the InvitationSettings local activity when a run starts).
	Invitations workflows.InvitationSettings
	// WebhookSealer opens the signing secrets of webhook endpoints (the API's, from
	// USHER_SECRET_KEY); WebhookClient sends webhooks (nil: webhooks.NewClient()).
	WebhookSealer *webhooks.Sealer
	WebhookClient *webhooks.Client
}

// RecordWorkflowStarted marks the invitation's workflow as running.
func (a *Activities) RecordWorkflowStarted(ctx context.Context, invitationID string) error {
	return a.Store.MarkWorkflowStarted(ctx, invitationID)
}

// RecordStatus writes a status change the workflow decided, with its audit event.
func (a *Activities) RecordStatus(ctx context.Context, c workflows.StatusChange) error {
	err := a.Store.ApplyStatusChange(ctx, store.StatusChange{
		EventKey: c.EventKey, InvitationID: c.InvitationID, Action: string(c.Action),
		From: c.From, To: c.To, Reason: c.Reason, ExpiresAt: c.ExpiresAt, DeliveryKey: c.DeliveryKey,
	})
	return forWorkflow(err)
}

// AcceptInvitation makes the invitee a member; see store.AcceptInvitation.
func (a *Activities) AcceptInvitation(ctx context.Context, r workflows.AcceptActivityRequest) (workflows.AcceptResult, error) {
	out, err := a.Store.AcceptInvitation(ctx, store.AcceptRequest{
		InvitationID: r.InvitationID, AttemptID: r.AttemptID, Name: r.Name, EventKey: r.EventKey,
	})
	if err != nil {
		return workflows.AcceptResult{}, forWorkflow(err)
	}
	return workflows.AcceptResult{UserID: out.UserID, ExistingUser: out.ExistingUser, PasswordSet: out.PasswordSet, NeedsPassword: out.NeedsPassword}, nil
}

// SendInvitationEmail sends the invitation with a fresh link, by e-mail or, for an SMS
// invitation, by text message. Issuing the link retires every earlier one of the invitation.
func (a *Activities) SendInvitationEmail(ctx context.Context, r workflows.DeliveryRequest) error {
	return a.sendInvitationLink(ctx, r, mail.KindInvitation, smsInvitationText)
}

// sendInvitationLink sends a message of kind carrying a fresh link to the invitation, by
// e-mail or, for an SMS invitation, as a text message in smsTexts' words.
func (a *Activities) sendInvitationLink(ctx context.Context, r workflows.DeliveryRequest, kind mail.Kind, smsTexts map[string][2]string) error {
	inv, err := a.Store.GetInvitation(ctx, r.InvitationID)
	if err != nil {
		return forWorkflow(err)
	}
	if inv.Channel == store.ChannelSMS {
		return a.sendInvitationSMS(ctx, r, inv, kind, smsTexts)
	}
	return a.deliver(ctx, r.DeliveryKey, func() (mail.Message, error) {
		token, hash := domain.NewToken()
		ic, err := a.Store.BeginInvitationLinkDelivery(ctx, r.DeliveryKey, string(kind), r.InvitationID, hash)
		if err != nil {
			return mail.Message{}, err
		}
		inv := ic.Invitation
		data := mail.InvitationData{
			InviteeName: inv.Name, InviterName: ic.InviterName, OrganizationName: ic.OrganizationName,
			Role: inv.Role, Link: a.link("invite", token), LogoURL: deref(ic.LogoURL),
		}
		if inv.ExpiresAt != nil {
			data.ExpiresAt = *inv.ExpiresAt
		}
		return a.render(kind, inv.Locale, inv.Email, data)
	})
}

// SendSetPasswordEmail sends a new account its link to choose a password.
func (a *Activities) SendSetPasswordEmail(ctx context.Context, r workflows.SetPasswordRequest) error {
	ic, err := a.Store.GetInvitationContext(ctx, r.InvitationID)
	if err != nil {
		return forWorkflow(err)
	}
	return a.deliver(ctx, r.DeliveryKey, func() (mail.Message, error) {
		token, hash := domain.NewToken()
		user, err := a.Store.BeginPasswordDelivery(ctx, r.DeliveryKey, r.UserID, &r.InvitationID, hash)
		if err != nil {
			return mail.Message{}, err
		}
		data := mail.SetPasswordData{
			Name: user.Name, OrganizationName: ic.OrganizationName, Link: a.link("password", token),
			ExpiresAt: user.CreatedAt.Add(store.PasswordExpiry), LogoURL: deref(ic.LogoURL),
		}
		return a.render(mail.KindSetPassword, ic.Invitation.Locale, user.Email, data)
	})
}

// NotifyInviterOfAcceptance tells the inviter, if there is one, that the invitee joined.
func (a *Activities) NotifyInviterOfAcceptance(ctx context.Context, r workflows.DeliveryRequest) error {
	return a.tellInviter(ctx, r, mail.KindInvitationAccepted, func(ic store.InvitationContext) any {
		inv := ic.Invitation
		return mail.InvitationAcceptedData{
			InviterName: ic.InviterName, InviteeName: inv.Name, InviteeEmail: inv.Email,
			OrganizationName: ic.OrganizationName, Role: inv.Role, LogoURL: deref(ic.LogoURL),
		}
	})
}

// deliver sends the e-mail named key at most once as far as Mailgun can tell us; prepare
// records the attempt and builds the message.
func (a *Activities) deliver(ctx context.Context, key string, prepare func() (mail.Message, error)) error {
	return a.sendOnce(ctx, key, outbox{
		channel: "email", provider: "mailgun", acceptedStatus: http.StatusOK,
		findSent: func(ctx context.Context, _ store.Delivery) (string, bool, error) { return a.Mail.FindSent(ctx, key) },
		prepare: func() (func(context.Context) (string, error), error) {
			msg, err := prepare()
			if err != nil {
				return nil, err
			}
			msg.DeliveryID = key
			return func(ctx context.Context) (string, error) { return a.Mail.Send(ctx, msg) }, nil
		},
		classify: func(err error) sendFailure {
			var permanent *mail.PermanentError
			var te *mail.TransientError
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

// outbox is how one provider takes part in sendOnce.
type outbox struct {
	// channel (email, sms) and provider (mailgun, twilio) label the send metrics, with the
	// HTTP status the provider answers an accepted message with.
	channel, provider string
	acceptedStatus    int
	// findSent asks the provider whether an earlier attempt of the delivery got through.
	findSent func(ctx context.Context, d store.Delivery) (providerID string, found bool, err error)
	// prepare records the attempt (and its link) and returns the call to the provider.
	prepare func() (send func(context.Context) (providerID string, err error), err error)
	// classify says whether a provider error is for good, or when to try again.
	classify func(error) sendFailure
}

// sendFailure is what a provider's error means for the send.
type sendFailure struct {
	permanent  bool
	retryAfter time.Duration // when the provider said
	statusCode int           // the provider's HTTP status; 0 when it did not answer
}

// sendOnce sends the message named key at most once as far as the provider can tell us.
// The delivery is recorded before the provider is called and again after; a retry that
// finds it still "sending" asks the provider whether the first attempt got through before
// trying again.
func (a *Activities) sendOnce(ctx context.Context, key string, o outbox) error {
	d, found, err := a.Store.GetDelivery(ctx, key)
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
			providerID, accepted, err := o.findSent(ctx, d)
			if err != nil {
				return retryLater(err, o.classify(err).retryAfter)
			}
			if accepted {
				return a.Store.FinishDelivery(ctx, key, providerID)
			}
		}
	}

	send, err := o.prepare()
	if errors.Is(err, store.ErrSuperseded) {
		return temporal.NewNonRetryableApplicationError("a newer decision replaced this message", workflows.ErrDeliverySuperseded, nil)
	}
	if err != nil {
		return forWorkflow(err)
	}
	began := time.Now()
	providerID, sendErr := send(ctx)
	if sendErr == nil {
		a.Metrics.ObserveSend(o.channel, o.provider, metrics.SendSent, o.acceptedStatus, time.Since(began))
		return a.Store.FinishDelivery(ctx, key, providerID)
	}
	failure := o.classify(sendErr)
	result := metrics.SendRetry
	if failure.permanent {
		result = metrics.SendRefused
	}
	a.Metrics.ObserveSend(o.channel, o.provider, result, failure.statusCode, time.Since(began))
	if err := a.Store.RecordDeliveryError(ctx, key, sendErr.Error(), failure.permanent); err != nil {
		return err
	}
	if failure.permanent {
		return refused(sendErr.Error())
	}
	return retryLater(sendErr, failure.retryAfter)
}

func (a *Activities) render(kind mail.Kind, locale, to string, data any) (mail.Message, error) {
	var r mail.Rendered
	var err error
	if a.Templates != nil {
		r, err = a.Templates.Render(kind, locale, data)
	} else {
		r, err = mail.Render(kind, locale, data)
	}
	if err != nil {
		return mail.Message{}, temporal.NewNonRetryableApplicationError("rendering e-mail: "+err.Error(), "TemplateError", nil)
	}
	return mail.Message{To: to, Subject: r.Subject, Text: r.Text, HTML: r.HTML, Tag: string(kind)}, nil
}

func (a *Activities) link(page, token string) string {
	return strings.TrimRight(a.PublicURL, "/") + "/" + page + "/" + token
}

func refused(reason string) error {
	return temporal.NewNonRetryableApplicationError(reason, workflows.ErrDeliveryRefused, nil)
}

// retryLater turns a provider hiccup into a retryable error, waiting as long as the
// provider asked when it said.
func retryLater(err error, after time.Duration) error {
	if after > 0 {
		return temporal.NewApplicationErrorWithOptions(err.Error(), workflows.ErrRateLimited, temporal.ApplicationErrorOptions{NextRetryDelay: after})
	}
	return err
}

// forWorkflow passes domain errors on as non-retryable errors that keep their code, and
// everything else as it is, to be retried.
func forWorkflow(err error) error {
	var de *domain.Error
	if errors.As(err, &de) {
		return workflows.ClientError(de)
	}
	return err
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// NotifyInviterOfRenewalRequest tells the inviter that the invitee opened an expired or
// revoked link and asks for a new invitation.
func (a *Activities) NotifyInviterOfRenewalRequest(ctx context.Context, r workflows.DeliveryRequest) error {
	ic, err := a.Store.GetInvitationContext(ctx, r.InvitationID)
	if err != nil {
		return forWorkflow(err)
	}
	if ic.InviterEmail == "" {
		return nil
	}
	return a.deliver(ctx, r.DeliveryKey, func() (mail.Message, error) {
		if err := a.Store.BeginPlainDelivery(ctx, r.DeliveryKey, string(mail.KindRenewalRequested), &r.InvitationID, ic.Invitation.InviterID); err != nil {
			return mail.Message{}, err
		}
		inv := ic.Invitation
		return a.render(mail.KindRenewalRequested, domain.DefaultLocale, ic.InviterEmail, mail.RenewalRequestedData{
			InviterName: ic.InviterName, InviteeName: inv.Name, InviteeEmail: inv.Email,
			OrganizationName: ic.OrganizationName, LogoURL: deref(ic.LogoURL),
		})
	})
}
