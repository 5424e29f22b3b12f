package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/usherhq/usher/internal/apiclient"
	"github.com/usherhq/usher/internal/domain"
)

// joinRequestsCommand is "usher join-requests": list, show and decide join requests.
func joinRequestsCommand(env *cliEnv) *cobra.Command {
	cmd := groupCommand(env, "join-requests", "List, show, approve, reject and cancel join requests through the API (USHER_API_URL, USHER_API_KEY)")
	cmd.AddCommand(
		joinRequestsListCommand(env),
		joinRequestsShowCommand(env),
		joinRequestActionCommand(env, "approve", "approved", `Approve a pending join request on the member's behalf (POST /v1/join-requests/{id}/approve),
as their decision link would: the visitor becomes a member of the organization with
--role (member unless given).`),
		joinRequestActionCommand(env, "reject", "rejected", `Reject a pending join request on the member's behalf (POST /v1/join-requests/{id}/reject),
as their decision link would. The API takes no reason.`),
		joinRequestActionCommand(env, "cancel", "cancelled", `Cancel an unconfirmed or pending join request (POST /v1/join-requests/{id}/cancel): its
links stop being accepted and nobody is e-mailed about it any more. It is final.`),
	)
	return cmd
}

func joinRequestsListCommand(env *cliEnv) *cobra.Command {
	var o listOptions
	var status, member string
	cmd := &cobra.Command{
		Use:   "list [flags]",
		Short: "List join requests, newest first",
		Long: `List join requests, newest first (GET /v1/join-requests), optionally filtered, one page
at a time (--limit, --cursor) or all of them (--all). Times are RFC 3339, in UTC.

` + adminEnvHelp + `

` + adminExitHelp,
		Example: `  usher join-requests list --status pending
  usher join-requests list --member 0190a0c4-… --all --json`,
	}
	o.flags(cmd, "join requests")
	cmd.Flags().StringVar(&status, "status", "", "list only requests in this status ("+joinStatuses(domain.JoinStatuses)+")")
	cmd.Flags().StringVar(&member, "member", "", "list only requests to this member (a user ID)")
	return adminLeaf(env, cmd, func(ctx context.Context, s *session, args []string) int {
		filter := apiclient.JoinRequestFilter{Status: strings.TrimSpace(status), MemberID: strings.TrimSpace(member)}
		switch {
		case len(args) > 0:
			return s.usage("list takes no arguments (filter with --status, --member)")
		case filter.Status != "" && !domain.JoinStatus(filter.Status).Valid():
			return s.usage("--status must be one of %s", joinStatuses(domain.JoinStatuses))
		}
		code := o.check(s)
		if code == exitOK {
			code = s.connect()
		}
		if code != exitOK {
			return code
		}
		items, code := list(ctx, s, o, "join requests", func(ctx context.Context, p apiclient.PageRequest) (apiclient.Page[apiclient.JoinRequest], error) {
			return s.client.ListJoinRequests(ctx, filter, p)
		})
		if code != exitOK {
			return code
		}
		if o.json {
			printJSON(s.env.stdout, items)
			return exitOK
		}
		if len(items) == 0 {
			fmt.Fprintln(s.env.stdout, "No join requests.")
			return exitOK
		}
		rows := make([][]string, 0, len(items))
		for _, jr := range items {
			rows = append(rows, []string{jr.ID, jr.Status, jr.VisitorEmail, jr.MemberID, jr.OrganizationID, when(jr.DecideBy), at(jr.CreatedAt)})
		}
		table(s.env.stdout, []string{"ID", "STATUS", "VISITOR", "MEMBER", "ORGANIZATION", "DECIDE BY", "CREATED AT"}, rows)
		return exitOK
	})
}

func joinRequestsShowCommand(env *cliEnv) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show ID [flags]",
		Short: "Show a join request",
		Long: `Show a join request (GET /v1/join-requests/{id}). Times are RFC 3339, in UTC.

` + adminEnvHelp + `

` + adminExitHelp,
		Example: `  usher join-requests show 0190f3c2-…`,
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON object instead")
	return adminLeaf(env, cmd, func(ctx context.Context, s *session, args []string) int {
		id, code := s.oneID(args, "join request")
		if code == exitOK {
			code = s.connect()
		}
		if code != exitOK {
			return code
		}
		jr, err := s.client.GetJoinRequest(ctx, id)
		if err != nil {
			return s.failed(ctx, "reading join request "+id, err)
		}
		if asJSON {
			printJSON(s.env.stdout, jr)
		} else {
			printJoinRequest(s.env.stdout, jr)
		}
		return exitOK
	})
}

func printJoinRequest(w io.Writer, jr apiclient.JoinRequest) {
	details(w,
		"ID", jr.ID,
		"Status", jr.Status,
		"Status reason", orDash(jr.StatusReason),
		"Visitor name", text(jr.VisitorName),
		"Visitor email", jr.VisitorEmail,
		"Message", text(jr.Message),
		"Member", jr.MemberID,
		"Organization", jr.OrganizationID,
		"Locale", jr.Locale,
		"Role", orDash(jr.Role),
		"User", orDash(jr.UserID),
		"Confirm by", at(jr.ConfirmExpiresAt),
		"Decide by", when(jr.DecideBy),
		"Created at", at(jr.CreatedAt),
		"Updated at", at(jr.UpdatedAt),
		"Confirmed at", when(jr.ConfirmedAt),
		"Decided at", when(jr.DecidedAt),
	)
}

func joinRequestActionCommand(env *cliEnv, name, past, long string) *cobra.Command {
	var asJSON bool
	var role string
	cmd := &cobra.Command{
		Use:   name + " ID [flags]",
		Short: capitalize(name) + " a join request",
		Long: long + `

` + adminEnvHelp + `

` + adminExitHelp,
		Example: "  usher join-requests " + name + " 0190f3c2-…",
	}
	if name == "approve" {
		cmd.Example += " --role admin"
		cmd.Flags().StringVar(&role, "role", "", "the role the visitor gets ("+strings.Join(domain.JoinRoles, ", ")+"; the API's default is member)")
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON object of the request afterwards instead")
	return adminLeaf(env, cmd, func(ctx context.Context, s *session, args []string) int {
		id, code := s.oneID(args, "join request")
		if code != exitOK {
			return code
		}
		if role != "" && !slices.Contains(domain.JoinRoles, role) {
			return s.usage("--role must be one of %s", strings.Join(domain.JoinRoles, ", "))
		}
		if code := s.connect(); code != exitOK {
			return code
		}
		var jr apiclient.JoinRequest
		var err error
		switch name {
		case "approve":
			jr, err = s.client.ApproveJoinRequest(ctx, id, role)
		case "reject":
			jr, err = s.client.RejectJoinRequest(ctx, id)
		default:
			jr, err = s.client.CancelJoinRequest(ctx, id)
		}
		if err != nil {
			return s.failed(ctx, fmt.Sprintf("%s of join request %s", name, id), err)
		}
		if asJSON {
			printJSON(s.env.stdout, jr)
			return exitOK
		}
		fmt.Fprintf(s.env.stdout, "Join request %s %s.\n\n", jr.ID, past)
		printJoinRequest(s.env.stdout, jr)
		return exitOK
	})
}
