# Shared by tally-server's maintainer scripts (deb and rpm); the packaging
# step prepends it to each script. DPKG_ROOT: see the agent's scripts.
root="${DPKG_ROOT:-}"
data="$root/var/lib/tally-server"

systemd_runs() {
	[ -z "$root" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1
}

# add_user: the system user the unit runs the server as.
add_user() {
	if [ -n "$root" ]; then
		return 0
	fi
	if ! getent group tally >/dev/null 2>&1; then
		groupadd --system tally
	fi
	if ! getent passwd tally >/dev/null 2>&1; then
		useradd --system --gid tally --home-dir /var/lib/tally-server --no-create-home --shell /usr/sbin/nologin --comment "Tally license server" tally
	fi
}

configure() {
	upgrading="$1"
	add_user
	mkdir -p "$data"
	chmod 0700 "$data"
	if [ -z "$root" ]; then
		chown tally:tally "$data"
	fi
	if ! systemd_runs; then
		echo "tally-server: systemd is not running here, so no service was started: run 'tally-server serve --data /var/lib/tally-server' as user tally with this system's service manager." >&2
		return 0
	fi
	systemctl daemon-reload || true
	systemctl enable tally-server.service || true
	if [ "$upgrading" = 1 ]; then
		systemctl try-restart tally-server.service || true
	else
		systemctl start tally-server.service || true
	fi
}

stop() {
	if systemd_runs; then
		systemctl disable --now tally-server.service || true
	fi
}

# purge keeps the database: it holds the licenses and every seat, and
# deleting it is 'tally-server uninstall --purge', never a package's doing.
purge() {
	echo "tally-server: the data folder $data (database, server key, admin token) is kept; delete it yourself if you mean to." >&2
}
