package service

import (
	"context"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

// Each line the agent prints becomes one event log entry of its level;
// a line split across writes waits for its end, and Close flushes the rest.
func TestLineWriterSplitsLinesByLevel(t *testing.T) {
	type entry struct {
		l   Level
		msg string
	}
	var got []entry
	w := &lineWriter{emit: func(l Level, msg string) error { got = append(got, entry{l, msg}); return nil }}
	for _, chunk := range []string{
		"time=… level=INFO msg=\"tally-agent running\"\n",
		"time=… level=WARN msg=\"server unreachable\"\r\n{\"level\":\"ERR",
		"OR\",\"msg\":\"post refused\"}\n\n",
		"tally-agent: the server refuses this agent",
	} {
		if n, err := io.WriteString(w, chunk); err != nil || n != len(chunk) {
			t.Fatalf("write %q: %d %v", chunk, n, err)
		}
	}
	if len(got) != 3 {
		t.Fatalf("before Close: %+v", got)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	want := []entry{
		{Info, `time=… level=INFO msg="tally-agent running"`},
		{Warning, `time=… level=WARN msg="server unreachable"`},
		{Error, `{"level":"ERROR","msg":"post refused"}`},
		{Error, "tally-agent: the server refuses this agent"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("entries %+v\nwant %+v", got, want)
	}
}

// An event log that refuses an entry is reported to the writer's caller.
func TestLineWriterReportsTheLogsError(t *testing.T) {
	boom := errors.New("event log full")
	w := &lineWriter{emit: func(Level, string) error { return boom }}
	if _, err := io.WriteString(w, "a line\n"); !errors.Is(err, boom) {
		t.Fatalf("write: %v", err)
	}
}

// Outside the Windows service manager Main runs the program in the
// foreground, with its context and stderr, and returns its exit code.
func TestMainRunsInTheForeground(t *testing.T) {
	var b strings.Builder
	type key struct{}
	ctx := context.WithValue(context.Background(), key{}, "mine")
	code := Main(ctx, &b, func(got context.Context, stderr io.Writer) int {
		if got.Value(key{}) != "mine" {
			t.Error("the program got another context")
		}
		io.WriteString(stderr, "hello")
		return 7
	})
	if code != 7 || b.String() != "hello" {
		t.Fatalf("exit %d, stderr %q", code, b.String())
	}
}
