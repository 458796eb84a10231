#!/bin/sh
# bench-replicas.sh: the figures of docs/PERFORMANCE.md "PostgreSQL and
# replicas" — tally-load steady (closed loop) and race against tally-server
# on SQLite, on PostgreSQL with one replica, and on PostgreSQL with three
# replicas, alternated round by round so that a shared machine's noise falls
# on all three alike. PostgreSQL runs durable (fsync, synchronous_commit and
# full_page_writes on: its defaults), in a cluster of its own started here
# (initdb in a temporary folder, a Unix socket only), stopped at the end.
#
#   make build && loadtest/bench-replicas.sh          (or: make bench-replicas)
#
# Settings (environment): ROUNDS (3), AGENTS (1000), CONC (256), DURATION
# (25s), RACE_AGENTS (2000), RACE_SEATS (500), PKG_MIN (200), PKG_MAX (800),
# POOL (3000), SERVE_FLAGS (the per-address limits lifted), BIN (bin), OUT (a temporary folder: each run's JSON report and
# the servers' logs). The last lines printed are the table of the figures.
set -eu
unset TALLY_STORE TALLY_DATA # a server started here on SQLite must not find a database in the environment

ROUNDS=${ROUNDS:-3}
AGENTS=${AGENTS:-1000}
CONC=${CONC:-256}
DURATION=${DURATION:-25s}
RACE_AGENTS=${RACE_AGENTS:-2000}
RACE_SEATS=${RACE_SEATS:-500}
PKG_MIN=${PKG_MIN:-200}
PKG_MAX=${PKG_MAX:-800}
POOL=${POOL:-3000}
BIN=${BIN:-bin}
OUT=${OUT:-$(mktemp -d /tmp/tally-bench.XXXXXX)}
# The simulated agents all dial from 127.0.0.1: lift the per-address limits.
SERVE_FLAGS=${SERVE_FLAGS:---max-conns-per-addr -1 --max-handshakes-per-addr -1}

for b in tally-server tally-load; do
	[ -x "$BIN/$b" ] || { echo "no $BIN/$b: run make build first" >&2; exit 1; }
done
command -v jq >/dev/null || { echo "jq is needed to read the reports" >&2; exit 1; }
PGBIN=$(pg_config --bindir 2>/dev/null || ls -d /usr/lib/postgresql/*/bin | tail -1)
[ -x "$PGBIN/initdb" ] || { echo "PostgreSQL is not installed (no initdb)" >&2; exit 1; }
BIN=$(cd "$BIN" && pwd)
mkdir -p "$OUT"
echo "reports and logs in $OUT"

# PostgreSQL refuses to run as root: it then runs as the user postgres.
PGDIR=$(mktemp -d /tmp/tally-bench-pg.XXXXXX)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$PGDIR"
as_pg "$PGBIN/initdb" -D "$PGDIR/data" -U postgres --auth=trust >"$OUT/initdb.log" 2>&1
as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/postgres.log" -w -o "-k $PGDIR -c listen_addresses= -p 5432 -c max_connections=200" start >/dev/null
SERVERS=""
cleanup() {
	for p in $SERVERS; do kill "$p" 2>/dev/null || true; done
	as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -m fast stop >/dev/null 2>&1 || true
	rm -rf "$PGDIR"
}
trap cleanup EXIT INT TERM
echo "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}'): fsync=$(as_pg "$PGBIN/psql" -h "$PGDIR" -U postgres -Atc 'show fsync') synchronous_commit=$(as_pg "$PGBIN/psql" -h "$PGDIR" -U postgres -Atc 'show synchronous_commit')"

# serve DATA [STORE]: start a server, wait for its addresses.json.
serve() {
	data=$1
	store=${2:-}
	mkdir -p "$data"
	if [ -n "$store" ]; then
		"$BIN/tally-server" serve --data "$data" --store "$store" --listen 127.0.0.1:0 --admin 127.0.0.1:0 $SERVE_FLAGS --log-format json 2>"$data.log" &
	else
		"$BIN/tally-server" serve --data "$data" --listen 127.0.0.1:0 --admin 127.0.0.1:0 $SERVE_FLAGS --log-format json 2>"$data.log" &
	fi
	pid=$!
	SERVERS="$SERVERS $pid"
	i=0
	until [ -f "$data/addresses.json" ] && [ "$(jq -r .pid "$data/addresses.json")" = "$pid" ]; do
		i=$((i + 1))
		[ $i -lt 600 ] || { echo "server on $data did not start" >&2; cat "$data.log" >&2; exit 1; }
		sleep 0.1
	done
}

stop_servers() {
	for p in $SERVERS; do kill -TERM "$p" 2>/dev/null || true; done
	for p in $SERVERS; do wait "$p" 2>/dev/null || true; done
	SERVERS=""
}

quic() { jq -r .quic "$1/addresses.json"; }

# one SETUP ROUND: start the servers of SETUP, run steady then race against
# them (fresh data folders and database), stop them.
one() {
	setup=$1
	round=$2
	dir="$OUT/$setup-$round"
	store=""
	case $setup in
	sqlite) serve "$dir/a" ;;
	pg1 | pg3)
		db="bench_${setup}_$round"
		as_pg "$PGBIN/createdb" -h "$PGDIR" -U postgres "$db"
		store="postgres://postgres@/$db?host=$PGDIR&port=5432&sslmode=disable"
		serve "$dir/a" "$store"
		;;
	esac
	addrs=$(quic "$dir/a")
	if [ "$setup" = pg3 ]; then
		serve "$dir/b" "$store"
		serve "$dir/c" "$store"
		addrs="$addrs,$(quic "$dir/b"),$(quic "$dir/c")"
	fi
	# TALLY_STORE: tally-load shares the minted license's issuer with every replica.
	TALLY_STORE="$store" "$BIN/tally-load" steady --data "$dir/a" --server "$addrs" -n "$AGENTS" -c "$CONC" --interval 0 --duration "$DURATION" \
		--packages-min "$PKG_MIN" --packages-max "$PKG_MAX" --pool "$POOL" --admin-probe -1s --quiet \
		--json "$dir/steady.json" >"$dir/steady.txt" 2>&1 || echo "steady $setup round $round: a check failed (see $dir/steady.txt)"
	TALLY_STORE="$store" "$BIN/tally-load" race --data "$dir/a" --server "$addrs" -n "$RACE_AGENTS" --seats "$RACE_SEATS" --product monitor \
		--admin-probe -1s --quiet --json "$dir/race.json" >"$dir/race.txt" 2>&1 || echo "race $setup round $round: a check failed (see $dir/race.txt)"
	stop_servers
	[ -z "$store" ] || as_pg "$PGBIN/dropdb" -h "$PGDIR" -U postgres "$db"
	printf '%-7s round %s  steady %8.1f posts/s (p50 %6.1f ms, p99 %7.1f ms)   race %7.1f posts/s (%s seats held)\n' "$setup" "$round" \
		"$(jq '.phases[] | select(.name=="steady") | .acked_per_second' "$dir/steady.json")" \
		"$(jq '.phases[] | select(.name=="steady") | .latency.delta.p50_ms' "$dir/steady.json")" \
		"$(jq '.phases[] | select(.name=="steady") | .latency.delta.p99_ms' "$dir/steady.json")" \
		"$(jq '.phases[] | select(.name=="race") | .acked_per_second' "$dir/race.json")" \
		"$(jq '[.phases[] | select(.name=="race") | .verdicts["monitor licensed"]] | add' "$dir/race.json")" | tee -a "$OUT/table.txt"
}

echo "$(date -u +%FT%TZ) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); steady: $AGENTS agents, -c $CONC, --interval 0, $DURATION; race: $RACE_AGENTS agents for $RACE_SEATS seats"
r=1
while [ $r -le "$ROUNDS" ]; do
	for setup in sqlite pg1 pg3; do
		one "$setup" "$r"
	done
	r=$((r + 1))
done
echo "$(date -u +%FT%TZ) done, load $(cut -d' ' -f1-3 /proc/loadavg)"
