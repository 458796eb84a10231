package protocol

// Package is one installed software package as the agent reports it.
// It is defined here, beside the other wire types, because software
// inventory posts carry lists of it; the collectors in agent/software fill it.
type Package struct {
	Name      string `cbor:"1,keyasint" json:"name"`
	Version   string `cbor:"2,keyasint" json:"version"`
	Arch      string `cbor:"3,keyasint,omitempty" json:"arch,omitempty"`
	Publisher string `cbor:"4,keyasint,omitempty" json:"publisher,omitempty"`
	// InstallDate is unix seconds, 0 when unknown.
	InstallDate int64 `cbor:"5,keyasint,omitempty" json:"install_date,omitempty"`
	// Source names the package database: dpkg, rpm, apk, snap, flatpak,
	// windows-registry, macos-app, macos-pkgutil.
	Source string `cbor:"6,keyasint" json:"source"`
}
