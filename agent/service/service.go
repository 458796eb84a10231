// Package service runs tally-agent under the Windows service manager, which
// starts it as `tally-agent.exe run --data …` (the MSI installs the service
// TallyAgent): it reports the service's state to the manager, stops the
// agent on Stop and Shutdown by cancelling its context, and sends what the
// agent would print on stderr to the Windows event log, since a service has
// no console. Started any other way, and on other systems, Main just runs
// the agent.
package service

import (
	"bytes"
	"context"
	"io"
)

// Name is the Windows service's name and its event log source.
const Name = "TallyAgent"

// Level is an event log entry's type.
type Level int

// The event log's entry types the agent uses.
const (
	Info Level = iota
	Warning
	Error
)

// LevelOf picks the event log entry type of one line the agent printed:
// its slog level (text or JSON), or Error for the last line of a failed
// command ("tally-agent: …").
func LevelOf(line []byte) Level {
	switch {
	case bytes.Contains(line, []byte("level=ERROR")), bytes.Contains(line, []byte(`"level":"ERROR"`)),
		bytes.HasPrefix(line, []byte("tally-agent: ")):
		return Error
	case bytes.Contains(line, []byte("level=WARN")), bytes.Contains(line, []byte(`"level":"WARN"`)):
		return Warning
	}
	return Info
}

// lineWriter hands each complete line written to it to emit; a line
// without its newline waits for the next write or Close.
type lineWriter struct {
	emit    func(Level, string) error
	pending []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.pending = append(w.pending, p...)
	for {
		i := bytes.IndexByte(w.pending, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := bytes.TrimRight(w.pending[:i], "\r")
		w.pending = w.pending[i+1:]
		if len(line) > 0 {
			if err := w.emit(LevelOf(line), string(line)); err != nil {
				return len(p), err
			}
		}
	}
}

// Close emits what is left of an unfinished line.
func (w *lineWriter) Close() error {
	if len(w.pending) == 0 {
		return nil
	}
	line := w.pending
	w.pending = nil
	return w.emit(LevelOf(line), string(line))
}

// Program is the agent's command line: it runs args until ctx ends and
// writes what it has to say to stderr, returning the exit code.
type Program func(ctx context.Context, stderr io.Writer) int
