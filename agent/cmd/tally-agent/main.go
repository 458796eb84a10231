// Command tally-agent is the Tally endpoint agent; see package cli.
package main

import (
	"context"
	"os"

	"github.com/tallyhq/tally/agent/cli"
)

func main() {
	m := &cli.Main{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
	os.Exit(m.Run(context.Background(), os.Args[1:]))
}
