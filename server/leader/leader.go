// Package leader elects the one server replica that runs the jobs which
// must run once across replicas (the maintenance job, the expiry and user
// sweeps, the alert notifier): a lone server always leads; replicas on one
// PostgreSQL hold a session advisory lock, so a replica that dies hands
// the jobs over when its session ends.
package leader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Elector runs jobs only while this process leads.
type Elector interface {
	// Run calls jobs each time this process becomes the leader, with a
	// context cancelled when it stops leading or ctx ends; jobs should
	// return promptly then. Run returns when ctx ends, after jobs has.
	Run(ctx context.Context, jobs func(ctx context.Context))
}

// Always is the elector of a server alone on its database (SQLite): it
// leads from start to end.
type Always struct{}

// Run calls jobs once with ctx.
func (Always) Run(ctx context.Context, jobs func(ctx context.Context)) {
	jobs(ctx)
	<-ctx.Done()
}

var errLost = errors.New("lost the leader session")

// DefaultKey is the advisory lock Tally's replicas contend for ("tally" in
// ASCII), unlikely to meet an application's own on a shared server.
const DefaultKey int64 = 0x74616c6c79

// Config tunes a Postgres elector; zero fields take the defaults.
type Config struct {
	// Key is the advisory lock's key (default DefaultKey): replicas of
	// one installation must use the same.
	Key int64
	// Poll is how often a replica that does not lead tries the lock
	// (default 1 s); Check how often the leader checks its session is
	// alive (default 1 s); Timeout bounds each of those round trips and a
	// connection attempt (default 2 s).
	Poll, Check, Timeout time.Duration
	// SessionTimeout is how long the database keeps the session of a
	// replica that went silent without closing its socket (a host that
	// lost power) before it ends it and frees the lock (default 10 s;
	// PostgreSQL 14 and later, idle_session_timeout). A replica that
	// exits or is killed closes its socket, and its session ends at once.
	SessionTimeout time.Duration
	Logger         *slog.Logger
}

// Postgres elects one leader among the processes that share a database,
// through a session advisory lock held on a connection of its own.
type Postgres struct {
	cfg     Config
	connect func(ctx context.Context) (*pgx.Conn, error)
}

// NewPostgres makes an elector that connects to url; a malformed URL is
// an error now rather than at each attempt.
func NewPostgres(url string, cfg Config) (*Postgres, error) {
	cc, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("leader: %w", err)
	}
	return newPostgres(cc, cfg), nil
}

// NewPostgresPool makes an elector that opens its own connection with the
// pool's settings: the lock must not go back to the pool with a session.
func NewPostgresPool(pool *pgxpool.Pool, cfg Config) *Postgres {
	return newPostgres(pool.Config().ConnConfig, cfg)
}

func newPostgres(cc *pgx.ConnConfig, cfg Config) *Postgres {
	if cfg.Key == 0 {
		cfg.Key = DefaultKey
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.Check <= 0 {
		cfg.Check = time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Postgres{cfg: cfg, connect: func(ctx context.Context) (*pgx.Conn, error) {
		return pgx.ConnectConfig(ctx, cc.Copy())
	}}
}

// Grace is how long a new leader waits before it starts the jobs: the
// longest a leader whose session was ended takes to notice (one check and
// its timeout), so that two replicas never run the jobs at once.
func (p *Postgres) Grace() time.Duration { return p.cfg.Check + p.cfg.Timeout }

// Run contends for the lock until ctx ends, and runs jobs while it holds
// it. A connection that fails loses the leadership at once.
func (p *Postgres) Run(ctx context.Context, jobs func(ctx context.Context)) {
	log := p.cfg.Logger
	var failing error // the last failure logged, so that an outage logs once
	for ctx.Err() == nil {
		conn, err := p.session(ctx)
		if err == nil {
			err = p.follow(ctx, conn, jobs)
			closeCtx, cancel := context.WithTimeout(context.Background(), p.cfg.Timeout)
			conn.Close(closeCtx)
			cancel()
		}
		switch {
		case err == nil || ctx.Err() != nil:
			failing = nil
		case errors.Is(err, errLost):
			failing = nil // lead logged it
		default:
			if failing == nil {
				log.Warn("leader election: no database session; the jobs that run once wait", "err", err)
			}
			failing = err
		}
		if !sleep(ctx, p.cfg.Poll) {
			return
		}
	}
}

// session connects and asks the database to end the session should this
// process go silent.
func (p *Postgres) session(ctx context.Context) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	conn, err := p.connect(cctx)
	if err != nil {
		return nil, err
	}
	set := fmt.Sprintf("SET idle_session_timeout = %d", p.cfg.SessionTimeout.Milliseconds())
	if _, err := conn.Exec(cctx, set); err != nil {
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "42704" { // undefined_object: before PostgreSQL 14
			conn.Close(context.Background())
			return nil, err
		}
	}
	return conn, nil
}

// follow tries the lock every Poll and leads when it gets it; it returns
// when ctx ends (nil) or the session fails.
func (p *Postgres) follow(ctx context.Context, conn *pgx.Conn, jobs func(ctx context.Context)) error {
	for {
		// Not cancelled with ctx: a lock taken as ctx ends must be seen to
		// be freed.
		qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.Timeout)
		var got bool
		err := conn.QueryRow(qctx, "SELECT pg_try_advisory_lock($1)", p.cfg.Key).Scan(&got)
		cancel()
		if ctx.Err() != nil {
			if err == nil && got {
				p.unlock(conn)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("try the leader lock: %w", err)
		}
		if got {
			return p.lead(ctx, conn, jobs)
		}
		if !sleep(ctx, p.cfg.Poll) {
			return nil
		}
	}
}

// lead holds the leadership: it checks the session every Check, starts
// jobs after the grace, and cancels them the moment a check fails.
func (p *Postgres) lead(ctx context.Context, conn *pgx.Conn, jobs func(ctx context.Context)) error {
	log := p.cfg.Logger
	log.Info("leader election: this replica leads; the jobs that run once start after the grace", "grace", p.Grace(), "session", conn.PgConn().PID())
	jctx, stop := context.WithCancel(ctx)
	defer stop()
	var done chan struct{} // closed when jobs returns; nil before they start
	grace := time.NewTimer(p.Grace())
	defer grace.Stop()
	check := time.NewTicker(p.cfg.Check)
	defer check.Stop()
	wait := func() {
		stop()
		if done != nil {
			<-done
		}
	}
	for {
		select {
		case <-ctx.Done():
			wait()
			p.unlock(conn)
			return nil
		case <-grace.C:
			done = make(chan struct{})
			go func() { defer close(done); jobs(jctx) }()
		case <-check.C:
			// Not cancelled with ctx, which would close the connection
			// before unlock can free the lock at once.
			qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.Timeout)
			err := conn.Ping(qctx)
			cancel()
			if ctx.Err() != nil {
				wait()
				p.unlock(conn)
				return nil
			}
			if err != nil {
				wait()
				log.Warn("leader election: lost the session, so the leadership; the jobs that run once stopped here", "err", err)
				return fmt.Errorf("%w: %w", errLost, err)
			}
		}
	}
}

// unlock frees the lock when this process stops leading by choice, so that
// another replica takes it at its next poll rather than once the session
// has ended; closing the connection frees it too.
func (p *Postgres) unlock(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.Timeout)
	defer cancel()
	conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", p.cfg.Key)
}

// sleep waits d, or less if ctx ends; it reports whether ctx is still on.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
