package daemon

import (
	"context"
	"time"

	"github.com/tallyhq/tally/server/alerting"
	"github.com/tallyhq/tally/server/leader"
	"github.com/tallyhq/tally/server/scheduler"
	"github.com/tallyhq/tally/server/userscheduler"
)

// onceJobs are the jobs that must run on one replica at a time: the
// maintenance job and license expiry, the user credential and directory
// sweeps, and the alert notifier. They run while Config.Elector says this
// server leads.
type onceJobs struct {
	stop func() // ends the election and waits for the jobs to stop
}

func (d *Daemon) startOnceJobs() *onceJobs {
	elector := d.cfg.Elector
	if elector == nil {
		elector = leader.Always{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		elector.Run(ctx, d.runOnceJobs)
	}()
	return &onceJobs{stop: func() { cancel(); <-done }}
}

// runOnceJobs starts the jobs and stops them when ctx ends (this server
// stops leading, or shuts down).
func (d *Daemon) runOnceJobs(ctx context.Context) {
	cfg := d.cfg
	maintEvery := cfg.MaintenanceEvery
	if maintEvery == 0 {
		maintEvery = 24 * time.Hour
	} else if maintEvery < 0 {
		maintEvery = 0
	}
	sched := scheduler.Start(scheduler.Config{Store: d.db, Maintenance: d.maintenance, Every: maintEvery, Poll: cfg.ExpiryPoll,
		Clock: cfg.Clock, Logger: d.log})
	userJobs := &userscheduler.Runner{Store: d.db, Clock: cfg.Clock, Poll: cfg.ExpiryPoll, Logger: d.log, Source: d.directorySource}
	userJobs.Start()
	ac := cfg.Alerts
	ac.Store, ac.Clock, ac.Zone, ac.Logger = d.db, cfg.Clock, d.dates.Zone, d.log
	alerts := alerting.Start(ac)

	<-ctx.Done()
	userJobs.Stop()
	sched.Stop()
	alerts.Stop()
}
