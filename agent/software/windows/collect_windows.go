package windows

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/sys/windows/registry"

	"github.com/tallyhq/tally/protocol"
)

// valueNames are the values Program reads; a collector need read no others.
var valueNames = [...]string{
	"DisplayName", "DisplayVersion", "Publisher", "InstallDate",
	"SystemComponent", "ParentKeyName", "ReleaseType", "VersionMajor", "VersionMinor",
}

const uninstallPath = `Microsoft\Windows\CurrentVersion\Uninstall`

// Collect inventories the programs of the running Windows system.
func Collect(ctx context.Context) (pkgs []protocol.Package, problems []string, err error) {
	type source struct {
		root registry.Key
		name string // for problems
		path string
		arch string
	}
	sources := []source{
		{registry.LOCAL_MACHINE, "HKLM", `SOFTWARE\` + uninstallPath, ""},
		// Absent on 32-bit Windows, whose only view is its native one.
		{registry.LOCAL_MACHINE, "HKLM", `SOFTWARE\WOW6432Node\` + uninstallPath, "x86"},
	}
	users, err := registry.USERS.ReadSubKeyNames(-1)
	if err != nil {
		problems = append(problems, fmt.Sprintf(`HKU: %v`, err))
	}
	slices.Sort(users)
	for _, sid := range users {
		// .DEFAULT is LocalSystem's profile again; _Classes hives hold no Uninstall.
		if sid == ".DEFAULT" || strings.HasSuffix(sid, "_Classes") {
			continue
		}
		sources = append(sources, source{registry.USERS, `HKU\` + sid, sid + `\Software\` + uninstallPath, ""})
	}

	seen := map[protocol.Package]bool{}
	for _, s := range sources {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		k, err := registry.OpenKey(s.root, s.path, registry.ENUMERATE_SUB_KEYS|registry.WOW64_64KEY)
		if errors.Is(err, registry.ErrNotExist) {
			continue
		}
		if err != nil {
			problems = append(problems, fmt.Sprintf(`%s\%s: %v`, s.name, s.path, err))
			continue
		}
		names, err := k.ReadSubKeyNames(-1)
		k.Close()
		if err != nil {
			problems = append(problems, fmt.Sprintf(`%s\%s: %v`, s.name, s.path, err))
			continue
		}
		for _, n := range names {
			v, err := readValues(s.root, s.path+`\`+n)
			if err != nil {
				problems = append(problems, fmt.Sprintf(`%s\%s\%s: %v`, s.name, s.path, n, err))
				continue
			}
			p, ok := Program(v, s.arch)
			if !ok || seen[p] {
				continue // the same program installed for several users is listed once
			}
			seen[p] = true
			pkgs = append(pkgs, p)
		}
	}
	return pkgs, problems, nil
}

// readValues reads the values Program needs from one Uninstall key.
func readValues(root registry.Key, path string) (Values, error) {
	k, err := registry.OpenKey(root, path, registry.QUERY_VALUE|registry.WOW64_64KEY)
	if err != nil {
		return nil, err
	}
	defer k.Close()
	v := Values{}
	for _, name := range valueNames {
		s, _, err := k.GetStringValue(name)
		if err == nil {
			v[name] = s
			continue
		}
		if errors.Is(err, registry.ErrUnexpectedType) {
			if n, _, err := k.GetIntegerValue(name); err == nil {
				v[name] = n
			}
		}
	}
	return v, nil
}
