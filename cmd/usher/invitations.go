package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/usherhq/usher/internal/apiclient"
	"github.com/usherhq/usher/internal/domain"
)

// invitationsCommand is "usher invitations": list, show and act on invitations.
func invitationsCommand(env *cliEnv) *cobra.Command {
	cmd := groupCommand(env, "invitations", "List, show, renew, revoke and resend invitations through the API (USHER_API_URL, USHER_API_KEY)")
	cmd.AddCommand(
		invitationsListCommand(env),
		invitationsShowCommand(env),
		invitationActionCommand(env, renewAction),
		invitationActionCommand(env, revokeAction),
		invitationActionCommand(env, resendAction),
	)
	return cmd
}

// invitationFilter are the filter flags, as GET /v1/invitations takes them.
type invitationFilter struct {
	status, organization, email string
}

func (f *invitationFilter) flags(cmd *cobra.Command, verb string) {
	fl := cmd.Flags()
	fl.StringVar(&f.status, "status", "", fmt.Sprintf("%s only invitations in this status (%s)", verb, joinStatuses(domain.Statuses)))
	fl.StringVar(&f.organization, "organization", "", verb+" only invitations to this organization (its ID)")
	fl.StringVar(&f.email, "email", "", verb+" only invitations for this address")
}

func (f invitationFilter) check(s *session) (apiclient.InvitationFilter, int) {
	out := apiclient.InvitationFilter{Status: strings.TrimSpace(f.status), OrganizationID: strings.TrimSpace(f.organization), Email: strings.TrimSpace(f.email)}
	if out.Status != "" && !domain.Status(out.Status).Valid() {
		return out, s.usage("--status must be one of %s", joinStatuses(domain.Statuses))
	}
	return out, exitOK
}

func (f invitationFilter) empty() bool {
	return strings.TrimSpace(f.status+f.organization+f.email) == ""
}

func joinStatuses[S ~string](statuses []S) string {
	names := make([]string, len(statuses))
	for i, s := range statuses {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

func invitationsListCommand(env *cliEnv) *cobra.Command {
	var o listOptions
	var f invitationFilter
	cmd := &cobra.Command{
		Use:   "list [flags]",
		Short: "List invitations, newest first",
		Long: `List invitations, newest first (GET /v1/invitations), optionally filtered, one page at a
time (--limit, --cursor) or all of them (--all). Times are RFC 3339, in UTC.

` + adminEnvHelp + `

` + adminExitHelp,
		Example: `  usher invitations list --status pending --organization 0190a0c4-…
  usher invitations list --status expired --all --json | jq -r '.[].id'`,
	}
	o.flags(cmd, "invitations")
	f.flags(cmd, "list")
	return adminLeaf(env, cmd, func(ctx context.Context, s *session, args []string) int {
		if len(args) > 0 {
			return s.usage("list takes no arguments (filter with --status, --organization, --email)")
		}
		filter, code := f.check(s)
		if code == exitOK {
			code = o.check(s)
		}
		if code == exitOK {
			code = s.connect()
		}
		if code != exitOK {
			return code
		}
		items, code := list(ctx, s, o, "invitations", func(ctx context.Context, p apiclient.PageRequest) (apiclient.Page[apiclient.Invitation], error) {
			return s.client.ListInvitations(ctx, filter, p)
		})
		if code != exitOK {
			return code
		}
		if o.json {
			printJSON(s.env.stdout, items)
			return exitOK
		}
		if len(items) == 0 {
			fmt.Fprintln(s.env.stdout, "No invitations.")
			return exitOK
		}
		printInvitationTable(s.env.stdout, items)
		return exitOK
	})
}

func printInvitationTable(w io.Writer, items []apiclient.Invitation) {
	rows := make([][]string, 0, len(items))
	for _, inv := range items {
		rows = append(rows, []string{inv.ID, inv.Status, inv.Email, inv.OrganizationID, inv.Delivery.Status, when(inv.ExpiresAt), at(inv.CreatedAt)})
	}
	table(w, []string{"ID", "STATUS", "EMAIL", "ORGANIZATION", "DELIVERY", "EXPIRES AT", "CREATED AT"}, rows)
}

func invitationsShowCommand(env *cliEnv) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show ID [flags]",
		Short: "Show an invitation",
		Long: `Show an invitation (GET /v1/invitations/{id}): whom it is for, where it stands, and how its
message was delivered. Times are RFC 3339, in UTC.

` + adminEnvHelp + `

` + adminExitHelp,
		Example: `  usher invitations show 0190f3c2-…
  usher invitations show 0190f3c2-… --json | jq .delivery`,
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON object instead")
	return adminLeaf(env, cmd, func(ctx context.Context, s *session, args []string) int {
		id, code := s.oneID(args, "invitation")
		if code == exitOK {
			code = s.connect()
		}
		if code != exitOK {
			return code
		}
		inv, err := s.client.GetInvitation(ctx, id)
		if err != nil {
			return s.failed(ctx, "reading invitation "+id, err)
		}
		if asJSON {
			printJSON(s.env.stdout, inv)
		} else {
			printInvitation(s.env.stdout, inv)
		}
		return exitOK
	})
}

func printInvitation(w io.Writer, inv apiclient.Invitation) {
	delivery := inv.Delivery.Status
	if inv.Delivery.Attempts > 0 {
		delivery += " (" + plural(inv.Delivery.Attempts, "attempt", "attempts") + ")"
	}
	metadata := string(inv.Metadata)
	if metadata == "" || metadata == "{}" || metadata == "null" {
		metadata = "-"
	}
	details(w,
		"ID", inv.ID,
		"Status", inv.Status,
		"Email", inv.Email,
		"Name", text(inv.Name),
		"Organization", inv.OrganizationID,
		"Role", inv.Role,
		"Locale", inv.Locale,
		"Inviter", orDash(inv.InviterID),
		"User", orDash(inv.UserID),
		"Redirect URL", orDash(inv.RedirectURL),
		"Expires in", inv.ExpiresIn,
		"Expires at", when(inv.ExpiresAt),
		"Created at", at(inv.CreatedAt),
		"Updated at", at(inv.UpdatedAt),
		"Accepted at", when(inv.AcceptedAt),
		"Revoked at", when(inv.RevokedAt),
		"Failure reason", orDash(inv.FailureReason),
		"Delivery", delivery,
		"Delivery error", orDash(inv.Delivery.LastError),
		"Metadata", metadata,
	)
}

// invitationAction is one of the changes an invitation can be asked for.
type invitationAction struct {
	name, past, short, long, example string
	// applies are the statuses the API accepts the action in, for the help.
	applies string
	do      func(ctx context.Context, c *apiclient.Client, id, expiresIn string) (apiclient.Invitation, error)
}

var (
	renewAction = invitationAction{
		name: "renew", past: "renewed", applies: "pending or expired",
		short: "Renew an invitation, or every one that matches filters",
		long: `Renew invitations (POST /v1/invitations/{id}/renew): a pending invitation then expires
--expires-in from now and its link keeps working; an expired one is reopened (pending
again, expiring --expires-in from now) and sent a fresh link. Without --expires-in each
invitation's own expires_in is used.`,
		example: `  usher invitations renew 0190f3c2-… --expires-in 72h
  usher invitations renew --status expired --organization 0190a0c4-… --expires-in 72h
  usher invitations renew --status expired --json | jq .failures_by_code
  usher invitations renew --all-matching --expires-in 24h`,
		do: func(ctx context.Context, c *apiclient.Client, id, expiresIn string) (apiclient.Invitation, error) {
			return c.RenewInvitation(ctx, id, expiresIn)
		},
	}
	revokeAction = invitationAction{
		name: "revoke", past: "revoked", applies: "draft or pending",
		short: "Revoke an invitation, or every one that matches filters",
		long: `Revoke invitations (POST /v1/invitations/{id}/revoke): their links stop working and any
delivery still being retried stops. It is final.`,
		example: `  usher invitations revoke 0190f3c2-…
  usher invitations revoke --status pending --email ann@example.com`,
		do: func(ctx context.Context, c *apiclient.Client, id, _ string) (apiclient.Invitation, error) {
			return c.RevokeInvitation(ctx, id)
		},
	}
	resendAction = invitationAction{
		name: "resend", past: "resent", applies: "pending",
		short: "Send an invitation again with a fresh link, or every one that matches filters",
		long: `Resend invitations (POST /v1/invitations/{id}/resend): each is sent again with a fresh
link, and its earlier links stop working. The expiry does not move (renew moves it).`,
		example: `  usher invitations resend 0190f3c2-…
  usher invitations resend --status pending --organization 0190a0c4-…`,
		do: func(ctx context.Context, c *apiclient.Client, id, _ string) (apiclient.Invitation, error) {
			return c.ResendInvitation(ctx, id)
		},
	}
)

type actionOptions struct {
	filter      invitationFilter
	expiresIn   string
	allMatching bool
	concurrency int
	json        bool
}

const (
	defaultConcurrency = 4
	maxConcurrency     = 32
)

func invitationActionCommand(env *cliEnv, a invitationAction) *cobra.Command {
	var o actionOptions
	cmd := &cobra.Command{
		Use:   a.name + " (ID | --status S --organization ORG --email ADDRESS | --all-matching) [flags]",
		Short: a.short,
		Long: a.long + `

Give one invitation's ID, or filters (--status, --organization, --email, as "usher
invitations list" takes them) to ` + a.name + ` every invitation that matches. The API ` + a.name + `s only
` + a.applies + ` invitations: pick them with --status, or the others count as failures
(invalid_state). Without any filter, --all-matching is needed to ` + a.name + ` every invitation.

The bulk form lists every match first, then ` + a.name + `s them --concurrency at a time, with
a progress bar on stderr (a progress line every few seconds when stderr is not a
terminal), and ends with a summary: how many were ` + a.past + `, and the failures grouped by
the API's error code. With --json the summary is one JSON object (the invitations as they
stand afterwards, and every failure). Ctrl-C starts no more; the requests under way are
abandoned, and may or may not have gone through.

` + adminEnvHelp + `

` + bulkExitHelp,
		Example: a.example,
	}
	o.filter.flags(cmd, a.name)
	f := cmd.Flags()
	if a.name == "renew" {
		f.StringVar(&o.expiresIn, "expires-in", "", "how long the renewed invitations stay open from now, such as 72h (1s to 720h; default: each invitation's own)")
	}
	f.BoolVar(&o.allMatching, "all-matching", false, "with no filter, "+a.name+" every invitation (a bulk form needs filters or this)")
	f.IntVar(&o.concurrency, "concurrency", defaultConcurrency, fmt.Sprintf("how many invitations a bulk form changes at a time (1-%d)", maxConcurrency))
	f.BoolVar(&o.json, "json", false, "print the API's JSON object (or, for a bulk form, a JSON summary) instead")
	return adminLeaf(env, cmd, func(ctx context.Context, s *session, args []string) int {
		return runInvitationAction(ctx, s, a, o, args)
	})
}

func runInvitationAction(ctx context.Context, s *session, a invitationAction, o actionOptions, args []string) int {
	filter, code := o.filter.check(s)
	if code != exitOK {
		return code
	}
	bulk := !o.filter.empty() || o.allMatching
	switch {
	case len(args) > 1:
		return s.usage("give one invitation ID, or filters (--status, --organization, --email) to %s many", a.name)
	case len(args) == 1 && bulk:
		return s.usage("give an invitation ID or filters, not both")
	case len(args) == 0 && !bulk:
		return s.usage("give an invitation ID, or filters (--status, --organization, --email) to %s every match; --all-matching %ss every invitation", a.name, a.name)
	case o.concurrency < 1 || o.concurrency > maxConcurrency:
		return s.usage("--concurrency must be a number from 1 to %d", maxConcurrency)
	}
	if o.expiresIn != "" {
		if _, err := domain.ParseExpiresIn(o.expiresIn); err != nil {
			var de *domain.Error
			if errors.As(err, &de) {
				return s.usage("--expires-in: %s", strings.TrimPrefix(de.Message, "expires_in "))
			}
			return s.usage("--expires-in: %v", err)
		}
	}
	if code := s.connect(); code != exitOK {
		return code
	}
	if !bulk {
		id := strings.TrimSpace(args[0])
		inv, err := a.do(ctx, s.client, id, o.expiresIn)
		if err != nil {
			return s.failed(ctx, fmt.Sprintf("%s of invitation %s", a.name, id), err)
		}
		if o.json {
			printJSON(s.env.stdout, inv)
			return exitOK
		}
		fmt.Fprintf(s.env.stdout, "Invitation %s %s.\n\n", inv.ID, a.past)
		printInvitation(s.env.stdout, inv)
		return exitOK
	}

	var matches []apiclient.Invitation
	err := s.client.WalkInvitations(ctx, filter, apiclient.MaxPageSize, func(page []apiclient.Invitation) error {
		matches = append(matches, page...)
		return nil
	})
	if err != nil {
		return s.failed(ctx, "listing the invitations to "+a.name, err)
	}
	b := bulkRun{
		env: s.env, verb: a.name, past: a.past, concurrency: o.concurrency,
		do: func(ctx context.Context, id string) (apiclient.Invitation, error) {
			return a.do(ctx, s.client, id, o.expiresIn)
		},
	}
	report := b.run(ctx, matches)
	report.Filter = bulkFilter{Status: filter.Status, OrganizationID: filter.OrganizationID, Email: filter.Email}
	if o.json {
		printJSON(s.env.stdout, report)
	} else {
		report.print(s.env.stdout)
	}
	switch {
	case report.Interrupted:
		return exitInterrupted
	case report.Failed > 0:
		return exitProblems
	}
	return exitOK
}
