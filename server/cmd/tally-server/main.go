// Command tally-server is the Tally license server; see package cli.
package main

import (
	"context"
	"os"

	"github.com/tallyhq/tally/server/cli"
)

func main() {
	m := &cli.Main{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
	os.Exit(m.Run(context.Background(), os.Args[1:]))
}
