package windows

import "testing"

func FuzzProgram(f *testing.F) {
	f.Add("7-Zip 24.08 (x64)", "24.08", "Igor Pavlov", "20240815", uint64(0), "", "", uint64(24), "x")
	f.Add("Update", "", "", "2024-01-01", uint64(1), "Windows", "Hotfix", uint64(0), "\x00")
	f.Add("\x00", "\xff", "", "99999999", uint64(1<<63), "", "Update", uint64(1<<40), "1")
	f.Fuzz(func(t *testing.T, name, version, publisher, date string, system uint64, parent, release string, major uint64, minor string) {
		v := Values{
			"DisplayName": name, "DisplayVersion": version, "Publisher": publisher, "InstallDate": date,
			"SystemComponent": system, "ParentKeyName": parent, "ReleaseType": release,
			"VersionMajor": major, "VersionMinor": minor,
		}
		p, ok := Program(v, "x86")
		if ok && (p.Name == "" || p.Source != Source || p.InstallDate < 0) {
			t.Fatalf("bad program %+v", p)
		}
		if ok && (system == 1 || v.str("ParentKeyName") != "") {
			t.Fatalf("listed a system component or an update: %+v", p)
		}
	})
}
