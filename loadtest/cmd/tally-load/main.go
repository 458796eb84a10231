// Command tally-load is Tally's load generator; see package loadcli.
package main

import (
	"context"
	"os"

	"github.com/tallyhq/tally/loadtest/loadcli"
)

func main() {
	fi, err := os.Stderr.Stat()
	tty := err == nil && fi.Mode()&os.ModeCharDevice != 0
	m := &loadcli.Main{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, StderrTTY: tty}
	if exe, err := os.Executable(); err == nil {
		m.Executable = exe
	}
	os.Exit(m.Run(context.Background(), os.Args[1:]))
}
