package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/usherhq/usher/internal/apiclient"
)

// This file holds what the admin commands (usher invitations, join-requests, batches)
// share: configuration, errors and exit codes, tables and JSON.

const adminEnvHelp = `Environment:
  USHER_API_URL  the API's address (default ` + defaultAPIURL + `)
  USHER_API_KEY  an API key (required; see "usher apikey create")`

const adminExitHelp = `Exit status:
  0    done
  2    wrong arguments or configuration
  3    the API answered an error (such as 404 or 409) or could not be reached
  130  interrupted (Ctrl-C)`

const bulkExitHelp = `Exit status:
  0    done: every match (or the one given) went through
  1    a bulk form: some invitations failed (the others went through)
  2    wrong arguments or configuration
  3    the API answered an error (such as 404 or 409) or could not be reached
  130  interrupted (Ctrl-C): no more are started`

func newAdminCommands() []*cobra.Command { return adminCommands(defaultCLIEnv()) }

// adminCommands are the commands on invitations, join requests and batches, through the API.
func adminCommands(env *cliEnv) []*cobra.Command {
	return []*cobra.Command{invitationsCommand(env), joinRequestsCommand(env), batchesCommand(env)}
}

// groupCommand is a command that only holds subcommands: alone it shows its help, and an
// unknown subcommand is a usage error.
func groupCommand(env *cliEnv, use, short string) *cobra.Command {
	g := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ArbitraryArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) > 0 {
				usageError(env, c, fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath()))
				env.exit(exitUsage)
				return errExited
			}
			return c.Help()
		},
	}
	// Inherited by the subcommands: a bad flag exits 2, as any usage error.
	g.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		usageError(env, c, err.Error())
		env.exit(exitUsage)
		return errExited
	})
	return g
}

// session is one run of an admin command.
type session struct {
	env     *cliEnv
	cmdPath string
	client  *apiclient.Client
	apiURL  string
}

// adminLeaf completes cmd so that it runs run, whose result is the exit code. Arguments
// are checked by run, so that a wrong count exits 2 too.
func adminLeaf(env *cliEnv, cmd *cobra.Command, run func(ctx context.Context, s *session, args []string) int) *cobra.Command {
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = func(c *cobra.Command, args []string) error {
		s := &session{env: env, cmdPath: c.CommandPath()}
		if code := run(c.Context(), s, args); code != exitOK {
			env.exit(code)
			return errExited
		}
		return nil
	}
	return cmd
}

func (s *session) usage(format string, a ...any) int {
	fmt.Fprintf(s.env.stderr, "usher: %s\nRun '%s --help' for usage.\n", fmt.Sprintf(format, a...), s.cmdPath)
	return exitUsage
}

// connect reads USHER_API_URL and USHER_API_KEY and makes the client.
func (s *session) connect() int {
	apiURL, apiKey, msg := apiConfig(s.env.getenv)
	if msg != "" {
		fmt.Fprintln(s.env.stderr, "usher:", msg)
		return exitUsage
	}
	s.apiURL, s.client = apiURL, apiclient.New(apiURL, apiKey, s.env.httpClient)
	return exitOK
}

// failed reports a failed call and returns the exit code for it.
func (s *session) failed(ctx context.Context, what string, err error) int {
	if ctx.Err() != nil {
		fmt.Fprintf(s.env.stderr, "usher: interrupted while %s\n", what)
		return exitInterrupted
	}
	reportAPIError(s.env.stderr, what+" failed", s.apiURL, err)
	return exitAPI
}

// oneID checks that args is a single ID of what.
func (s *session) oneID(args []string, what string) (string, int) {
	if len(args) != 1 || strings.TrimSpace(args[0]) == "" {
		return "", s.usage("give one %s ID", what)
	}
	return strings.TrimSpace(args[0]), exitOK
}

func printJSON(w io.Writer, v any) {
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil { // cannot happen with the types printed
		panic(err)
	}
	fmt.Fprintf(w, "%s\n", out)
}

// listOptions are the paging flags of the list commands.
type listOptions struct {
	limit  int
	cursor string
	all    bool
	json   bool
}

func (o *listOptions) flags(cmd *cobra.Command, what string) {
	f := cmd.Flags()
	f.IntVar(&o.limit, "limit", 0, fmt.Sprintf("how many %s a page holds, 1 to %d (default 50, or %d with --all)", what, apiclient.MaxPageSize, apiclient.MaxPageSize))
	f.StringVar(&o.cursor, "cursor", "", "start at this page (a cursor that an earlier list printed)")
	f.BoolVar(&o.all, "all", false, fmt.Sprintf("follow the pages to list every %s that matches", strings.TrimSuffix(what, "s")))
	f.BoolVar(&o.json, "json", false, "print a JSON array of the API's objects instead of a table")
}

func (o listOptions) check(s *session) int {
	switch {
	case o.limit < 0 || o.limit > apiclient.MaxPageSize:
		return s.usage("--limit must be a number from 1 to %d", apiclient.MaxPageSize)
	case o.all && o.cursor != "":
		return s.usage("--all and --cursor do not go together")
	}
	return exitOK
}

// list reads one page, or with --all every page, and says on stderr how to get the next.
func list[T any](ctx context.Context, s *session, o listOptions, what string,
	page func(context.Context, apiclient.PageRequest) (apiclient.Page[T], error),
) ([]T, int) {
	items := []T{}
	p := apiclient.PageRequest{Limit: o.limit, Cursor: o.cursor}
	if o.all && p.Limit == 0 {
		p.Limit = apiclient.MaxPageSize
	}
	for {
		got, err := page(ctx, p)
		if err != nil {
			return nil, s.failed(ctx, "listing "+what, err)
		}
		items = append(items, got.Data...)
		if got.NextCursor == nil || *got.NextCursor == "" {
			return items, exitOK
		}
		if !o.all {
			fmt.Fprintf(s.env.stderr, "There are more %s: add --cursor %s for the next page, or --all for every one.\n", what, *got.NextCursor)
			return items, exitOK
		}
		p.Cursor = *got.NextCursor
	}
}

// table writes a table with a header row; cells are kept on one line.
func table(w io.Writer, header []string, rows [][]string) {
	writeRows(w, append([][]string{header}, rows...))
}

// writeRows writes rows in aligned columns; cells are kept on one line.
func writeRows(w io.Writer, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, row := range rows {
		cells := make([]string, len(row))
		for i, c := range row {
			cells[i] = oneLine(c)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	_ = tw.Flush()
}

// details writes "name: value" lines, aligned; pairs holds names and values in turn.
func details(w io.Writer, pairs ...string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for i := 0; i+1 < len(pairs); i += 2 {
		fmt.Fprintf(tw, "%s:\t%s\n", pairs[i], oneLine(pairs[i+1]))
	}
	_ = tw.Flush()
}

// when shows a time in RFC 3339 in UTC, or "-".
func when(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func at(t time.Time) string { return when(&t) }

// orDash shows an empty or missing value as "-".
func orDash(s *string) string {
	if s == nil || *s == "" {
		return "-"
	}
	return *s
}

func text(s string) string { return orDash(&s) }

// errorCode names a failure for grouping: the API's code, http_<status> for an answer
// without one, or unreachable / interrupted.
func errorCode(ctx context.Context, err error) (code, message string, apiErr *apiclient.Error) {
	if e, ok := apiclient.AsError(err); ok {
		if e.Code != "" {
			return e.Code, e.Message, e
		}
		return fmt.Sprintf("http_%d", e.Status), e.Message, e
	}
	if ctx.Err() != nil || errors.Is(err, context.Canceled) {
		return "interrupted", "interrupted before the API answered (it may have been done)", nil
	}
	return "unreachable", unwrapURLError(err).Error(), nil
}
