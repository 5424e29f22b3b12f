package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/usherhq/usher/internal/apiclient"
)

// batchesCommand is "usher batches": where a batch of invitations stands.
func batchesCommand(env *cliEnv) *cobra.Command {
	cmd := groupCommand(env, "batches", "Show batches of invitations through the API (USHER_API_URL, USHER_API_KEY)")
	cmd.AddCommand(batchesShowCommand(env))
	return cmd
}

func batchesShowCommand(env *cliEnv) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show ID [flags]",
		Short: "Show where a batch of invitations stands",
		Long: `Show where the people of a batch stand (GET /v1/batches/{id}): queued until their
message is sent, then sent, or failed. A batch's ID is the batch_id of an import or a bulk
invitation. Times are RFC 3339, in UTC.

` + adminEnvHelp + `

` + adminExitHelp,
		Example: `  usher batches show 0190f3c2-…
  usher batches show 0190f3c2-… --json | jq .finished`,
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON object instead")
	return adminLeaf(env, cmd, func(ctx context.Context, s *session, args []string) int {
		id, code := s.oneID(args, "batch")
		if code == exitOK {
			code = s.connect()
		}
		if code != exitOK {
			return code
		}
		b, err := s.client.GetBatch(ctx, id)
		if err != nil {
			return s.failed(ctx, "reading batch "+id, err)
		}
		if asJSON {
			printJSON(s.env.stdout, b)
		} else {
			printBatch(s.env.stdout, b)
		}
		return exitOK
	})
}

func printBatch(w io.Writer, b apiclient.Batch) {
	finished := "no"
	if b.Finished {
		finished = "yes"
	}
	details(w,
		"ID", b.ID,
		"Channel", b.Channel,
		"People", fmt.Sprint(b.Total),
		"Queued", fmt.Sprint(b.Queued),
		"Sent", fmt.Sprint(b.Sent),
		"Failed", fmt.Sprint(b.Failed),
		"Done", fmt.Sprintf("%d/%d", b.Done, b.Total),
		"Finished", finished,
		"Created at", at(b.CreatedAt),
		"Finished at", when(b.FinishedAt),
	)
}
