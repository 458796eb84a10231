// Package pluginstest provides a recording plugins.Env for the plug-ins'
// unit tests: what a plug-in posts and asks is kept, and the answers to
// its requests come from a function the test gives.
package pluginstest

import (
	"context"
	"log/slog"
	"sync"

	"github.com/tallyhq/tally/agent/plugins"
	"github.com/tallyhq/tally/protocol"
)

// Request is one post or call a plug-in made.
type Request struct {
	Kind protocol.Kind
	Body any
}

// Env is a plugins.Env that records.
type Env struct {
	P        protocol.Plugin
	St       plugins.Status
	IsOnline bool
	Pkgs     []protocol.Package
	SwErr    error
	// Answer fills out for a call; nil answers nothing (an empty answer).
	Answer func(kind protocol.Kind, in, out any) error

	mu           sync.Mutex
	Posts        []Request
	Calls        []Request
	CollectNows  int
	Refreshes    int
	SoftwareRead int
}

var _ plugins.Env = (*Env)(nil)

func (e *Env) Plugin() protocol.Plugin { return e.P }
func (e *Env) Status() plugins.Status  { return e.St }
func (e *Env) Online() bool            { return e.IsOnline }
func (e *Env) Logger() *slog.Logger    { return slog.New(slog.DiscardHandler) }

func (e *Env) Software(context.Context) ([]protocol.Package, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.SoftwareRead++
	return append([]protocol.Package(nil), e.Pkgs...), e.SwErr
}

func (e *Env) Post(kind protocol.Kind, body any) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.Posts = append(e.Posts, Request{kind, body})
	return nil
}

func (e *Env) Call(_ context.Context, kind protocol.Kind, in, out any) error {
	e.mu.Lock()
	e.Calls = append(e.Calls, Request{kind, in})
	e.mu.Unlock()
	if e.Answer == nil {
		return nil
	}
	return e.Answer(kind, in, out)
}

func (e *Env) CollectNow() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.CollectNows++
}

func (e *Env) RefreshPlugins() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.Refreshes++
}

// Refused is a status saying the product was refused a seat.
func Refused(product string) plugins.Status {
	return plugins.Status{Product: product, Verdict: protocol.VerdictDiscardedNoSeat, Reason: "all seats of " + product + " are taken"}
}

// Licensed is a status saying the product is licensed.
func Licensed(product string) plugins.Status {
	return plugins.Status{Product: product, Verdict: protocol.VerdictLicensed}
}
