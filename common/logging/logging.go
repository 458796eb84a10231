// Package logging builds the log/slog logger both binaries use: human text
// on a terminal, JSON for log collectors, chosen by a flag.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// Formats accepted by New.
const (
	FormatText = "text" // the default: key=value lines for people
	FormatJSON = "json" // one JSON object per line for log collectors
)

// New returns a logger writing to w in the given format at the given level
// ("debug", "info", "warn", "error").
func New(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		return nil, fmt.Errorf("log level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case FormatText, "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case FormatJSON:
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("log format %q: use text or json", format)
	}
}

// IsTerminal reports whether w is a character device such as a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// Discard returns a logger that drops everything, for tests and quiet commands.
func Discard() *slog.Logger {
	return slog.New(slog.DiscardHandler)
}
