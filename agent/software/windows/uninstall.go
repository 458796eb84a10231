// Package windows inventories Windows programs the way "Apps & features"
// lists them: from the Uninstall keys of the registry, in HKLM's 64-bit and
// 32-bit (WOW6432Node) views and in every loaded user hive (HKU\<SID>).
//
// The rules that turn one key's values into a program are here, free of
// build tags, so they are tested on every platform: a key is a program when
// it has a DisplayName, is not a SystemComponent, has no ParentKeyName (an
// update of another program) and no ReleaseType of Update, Hotfix, Security
// Update or Service Pack. InstallDate (YYYYMMDD, local date) is reported as
// midnight UTC of that day. Arch is "x86" for the 32-bit view and empty
// elsewhere: a 64-bit view holds x64 and, on ARM, arm64 programs alike.
// Only the running system's registry is read; a mounted Windows image's
// hives are not parsed.
package windows

import (
	"strconv"
	"strings"
	"time"

	"github.com/tallyhq/tally/protocol"
)

// Source is the protocol.Package Source of every package found here.
const Source = "windows-registry"

// Values holds one Uninstall key's values as read from the registry:
// REG_SZ and REG_EXPAND_SZ as string, REG_DWORD and REG_QWORD as uint64.
type Values map[string]any

// skippedReleaseTypes mark updates to another program, not programs.
var skippedReleaseTypes = [...]string{"update", "hotfix", "security update", "service pack"}

// Program returns the program an Uninstall key describes, read from the
// registry view of architecture arch ("x86" or ""), and false when the key
// is not one "Apps & features" would list.
func Program(v Values, arch string) (protocol.Package, bool) {
	name := v.str("DisplayName")
	if name == "" || v.str("ParentKeyName") != "" {
		return protocol.Package{}, false
	}
	if n, ok := v.num("SystemComponent"); ok && n == 1 {
		return protocol.Package{}, false
	}
	rt := strings.ToLower(v.str("ReleaseType"))
	for _, s := range skippedReleaseTypes {
		if rt == s {
			return protocol.Package{}, false
		}
	}
	p := protocol.Package{
		Name:        name,
		Version:     v.str("DisplayVersion"),
		Arch:        arch,
		Publisher:   v.str("Publisher"),
		InstallDate: installDate(v.str("InstallDate")),
		Source:      Source,
	}
	if p.Version == "" {
		major, okMajor := v.num("VersionMajor")
		minor, okMinor := v.num("VersionMinor")
		if okMajor && okMinor {
			p.Version = strconv.FormatUint(major, 10) + "." + strconv.FormatUint(minor, 10)
		}
	}
	return p, true
}

// installDate parses YYYYMMDD; anything else (installers write all sorts)
// is unknown.
func installDate(s string) int64 {
	if len(s) != 8 {
		return 0
	}
	t, err := time.Parse("20060102", s)
	if err != nil || t.Year() < 1980 {
		return 0
	}
	return t.Unix()
}

// str returns a value as a trimmed string; a number is formatted.
func (v Values) str(name string) string {
	switch x := v[name].(type) {
	case string:
		return strings.TrimSpace(strings.TrimRight(x, "\x00"))
	case uint64:
		return strconv.FormatUint(x, 10)
	}
	return ""
}

// num returns a value as a number; a string holding a number counts, as
// some installers write DWORDs as strings.
func (v Values) num(name string) (uint64, bool) {
	switch x := v[name].(type) {
	case uint64:
		return x, true
	case string:
		n, err := strconv.ParseUint(strings.TrimSpace(x), 10, 64)
		return n, err == nil
	}
	return 0, false
}
