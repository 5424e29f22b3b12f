// Command usher runs Usher: the API, the worker, migrations, admin commands, and, in
// development builds, the whole stack in one process (usher dev).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCommand().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "usher:", err)
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "usher",
		Short:         "Invitations and join requests as durable Temporal workflows",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newAPICommand(), newWorkerCommand(), newMigrateCommand(), newAPIKeyCommand(), newDevCommand())
	root.AddCommand(newUsersCommand())
	root.AddCommand(newAdminCommands()...)
	return root
}
