package installer

// Where 'tally-agent install' and 'tally-server install' put things, as
// paths of the installed system (a Target prefixes its root). The binaries
// go to /usr/local/bin, the place for software no package manager owns, so
// that a later .deb or .rpm (which own /usr/bin) never fights over them.
const (
	AgentBinary = "/usr/local/bin/tally-agent"
	AgentConfig = "/etc/tally/agent.conf"
	AgentData   = "/var/lib/tally-agent"
	AgentUnit   = "/etc/systemd/system/tally-agent.service"
	AgentWants  = "/etc/systemd/system/multi-user.target.wants/tally-agent.service"

	ServerBinary = "/usr/local/bin/tally-server"
	ServerEnv    = "/etc/tally/server.env"
	ServerData   = "/var/lib/tally-server"
	ServerUnit   = "/etc/systemd/system/tally-server.service"
	ServerWants  = "/etc/systemd/system/multi-user.target.wants/tally-server.service"
	ServerUser   = "tally"

	// PackagedAgentBinary and PackagedServerBinary are where the .deb and
	// .rpm packages put the binaries (and their units name them).
	PackagedAgentBinary  = "/usr/bin/tally-agent"
	PackagedServerBinary = "/usr/bin/tally-server"

	// ConfigDir holds both configuration files.
	ConfigDir = "/etc/tally"

	// ManifestFile is the name of the manifest in the data folder.
	ManifestFile = "install-manifest.json"
)
