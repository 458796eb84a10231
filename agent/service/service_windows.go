//go:build windows

package service

import (
	"context"
	"fmt"
	"io"
	"time"

	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/eventlog"
)

// eventID is the ID of every entry the agent writes (EventCreate.exe, the
// source's message file, takes IDs from 1 to 1000).
const eventID = 1

// stopWait is how long a stopping agent is said to need, so that the
// service manager does not give up on it while it finishes a post.
const stopWait = 20 * time.Second

// Main runs program as the Windows service Name when the service manager
// started this process, and in the foreground otherwise.
func Main(ctx context.Context, stderr io.Writer, program Program) int {
	managed, err := svc.IsWindowsService()
	if err != nil || !managed {
		return program(ctx, stderr)
	}
	h := &handler{ctx: ctx, program: program, stderr: stderr}
	if err := svc.Run(Name, h); err != nil {
		fmt.Fprintf(stderr, "tally-agent: run as the Windows service %s: %v\n", Name, err)
		return 1
	}
	return h.code
}

type handler struct {
	ctx     context.Context
	program Program
	stderr  io.Writer
	code    int
}

// Execute reports the service running at once (the agent waits for its
// server on its own, with back-off), runs the program, and cancels it on
// Stop or Shutdown.
func (h *handler) Execute(_ []string, requests <-chan svc.ChangeRequest, status chan<- svc.Status) (bool, uint32) {
	status <- svc.Status{State: svc.StartPending}
	log := io.Writer(h.stderr)
	if el, err := eventlog.Open(Name); err == nil {
		defer el.Close()
		w := &lineWriter{emit: func(l Level, msg string) error {
			switch l {
			case Error:
				return el.Error(eventID, msg)
			case Warning:
				return el.Warning(eventID, msg)
			}
			return el.Info(eventID, msg)
		}}
		defer w.Close()
		log = w
	}
	ctx, cancel := context.WithCancel(h.ctx)
	defer cancel()
	done := make(chan int, 1)
	go func() { done <- h.program(ctx, log) }()
	status <- svc.Status{State: svc.Running, Accepts: svc.AcceptStop | svc.AcceptShutdown}
	for {
		select {
		case code := <-done:
			h.code = code
			status <- svc.Status{State: svc.StopPending}
			return code != 0, uint32(code)
		case r := <-requests:
			switch r.Cmd {
			case svc.Interrogate:
				status <- r.CurrentStatus
			case svc.Stop, svc.Shutdown:
				status <- svc.Status{State: svc.StopPending, WaitHint: uint32(stopWait / time.Millisecond)}
				cancel()
			}
		}
	}
}
