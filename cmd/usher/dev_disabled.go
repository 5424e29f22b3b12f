//go:build nodev

package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// Production builds (-tags nodev) leave the embedded Temporal server out of the binary.
func newDevCommand() *cobra.Command {
	return &cobra.Command{
		Use:    "dev",
		Short:  "Not available in this build (built with -tags nodev)",
		Hidden: true,
		RunE: func(*cobra.Command, []string) error {
			return errors.New("usher dev is not part of production builds; build without -tags nodev")
		},
	}
}
