// Command tally-agent is the Tally endpoint agent; see package cli. Started
// by the Windows service manager, it runs as a service (package service).
package main

import (
	"context"
	"io"
	"os"

	"github.com/tallyhq/tally/agent/cli"
	"github.com/tallyhq/tally/agent/service"
)

func main() {
	os.Exit(service.Main(context.Background(), os.Stderr, func(ctx context.Context, stderr io.Writer) int {
		m := &cli.Main{Stdout: os.Stdout, Stderr: stderr, Getenv: os.Getenv}
		return m.Run(ctx, os.Args[1:])
	}))
}
