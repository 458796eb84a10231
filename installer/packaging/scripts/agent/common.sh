# Shared by tally-agent's maintainer scripts (deb and rpm); the packaging
# step prepends it to each script, so each stays one self-contained file.
#
# DPKG_ROOT is set by dpkg when it installs into another root without a
# chroot (dpkg --root DIR --force-script-chrootless: image builders and the
# package tests); the scripts then act on that root and never on this
# host's systemd.
root="${DPKG_ROOT:-}"
agent="$root/usr/bin/tally-agent"
data="$root/var/lib/tally-agent"
conf="$root/etc/tally/agent.conf"

# systemd_runs: systemd is this host's init and the scripts act on this host.
systemd_runs() {
	[ -z "$root" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1
}

enrolled() {
	[ -f "$data/enrollment.json" ]
}

# configure: the data folder, then the service once the agent is enrolled
# ('tally-agent install' enrolls it, taking the server, the fingerprint and
# the plug-ins from /etc/tally/agent.conf when its flags do not name them,
# and enables the service). upgrading is 1 on an upgrade, when the service
# is restarted on the new binary.
configure() {
	upgrading="$1"
	mkdir -p "$data"
	chmod 0700 "$data"
	if systemd_runs; then
		systemctl daemon-reload || true
	fi
	if ! enrolled; then
		echo "tally-agent: installed, not enrolled: the service stays disabled until 'tally-agent install --server HOST:PORT --fingerprint FP --secret S' (the line 'tally-server enroll-info' prints; with server and fingerprint in /etc/tally/agent.conf, 'tally-agent install --secret S' is enough)." >&2
		return 0
	fi
	if ! systemd_runs; then
		echo "tally-agent: enrolled; systemd is not running here, so no service was enabled: start 'tally-agent run' with this system's service manager." >&2
		return 0
	fi
	if [ "$upgrading" = 1 ]; then
		# An upgrade keeps the admin's choice: a running service restarts on
		# the new binary, a stopped or disabled one stays so.
		systemctl try-restart tally-agent.service || true
	else
		systemctl enable --now tally-agent.service || true
	fi
}

# goodbye: tell the server this agent is removed, which frees every seat it
# holds; a failure stops the removal, so the package stays installed and
# the seats stay held rather than leaving a half-removed agent.
goodbye() {
	if ! enrolled; then
		if systemd_runs; then
			systemctl disable --now tally-agent.service >/dev/null 2>&1 || true
		fi
		return 0
	fi
	force=
	case "${TALLY_AGENT_FORCE_REMOVE:-}" in
	1 | yes | true) force=1 ;;
	esac
	set -- uninstall --package
	if [ -n "$force" ]; then
		set -- "$@" --force
	fi
	if [ -n "$root" ]; then
		set -- "$@" --root "$root"
	fi
	if ! "$agent" "$@"; then
		cat >&2 <<'MSG'
tally-agent: the server was not told that this agent is being removed, so the
package stays installed. The goodbye stays queued: the agent sends it when the
server is back, which frees the seats; then run the removal again. To keep
the agent instead, run 'tally-agent install' (it cancels the goodbye). To
remove it without telling the server (the computer then keeps its seats until
the stale-node policy or an administrator frees them), run the removal with
TALLY_AGENT_FORCE_REMOVE=1 in its environment, e.g.
  sudo env TALLY_AGENT_FORCE_REMOVE=1 apt-get remove tally-agent
MSG
		return 1
	fi
}

purge() {
	rm -rf "$data"
	rmdir "$root/etc/tally" 2>/dev/null || true
}
