package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An agent configured by its file alone: enroll takes the server and the
// fingerprint from it, run and status the data folder, and a mistake in
// the file stops every command with the file, line and key.
func TestAgentConfigFileDrivesTheBuiltAgent(t *testing.T) {
	serverBin, agentBin := binaries(t)
	p := startServerBinary(t, serverBin, t.TempDir())
	info, err := p.admin(t).EnrollInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(t.TempDir(), "agent")
	conf := filepath.Join(t.TempDir(), "agent.conf")
	text := fmt.Sprintf("# test agent\ndata = %s\nserver = %s\nfingerprint = %s\nmachine-id = config-file-agent\ninterval = 2h\nspool-max-bytes = 8MiB\n",
		data, info.Server, info.Fingerprint)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code := runBin(t, agentBin, "enroll", "--config", conf, "--secret", info.Secret); code != 0 || !strings.Contains(out, "Enrolled with "+info.Server) {
		t.Fatalf("enroll from the file: exit %d\n%s", code, out)
	}
	if out, code := runBin(t, agentBin, "run", "--once", "--config", conf); code != 0 || !strings.Contains(out, "Posted inventory") {
		t.Fatalf("run --once from the file: exit %d\n%s", code, out)
	}
	if out, code := runBin(t, agentBin, "status", "--config", conf); code != 0 || !strings.Contains(out, "server:       "+info.Server) {
		t.Fatalf("status from the file: exit %d\n%s", code, out)
	}
	cs, err := p.admin(t).Computers(context.Background())
	if err != nil || len(cs) != 1 {
		t.Fatalf("computers: %+v %v", cs, err)
	}
	if c, _ := p.admin(t).Computer(context.Background(), cs[0].ID); c.Basic == nil || c.Basic.Hints.MachineID != "config-file-agent" {
		t.Fatalf("the file's machine-id was not used: %+v", c.Basic)
	}

	if err := os.WriteFile(conf, []byte(text+"intervall = 1h\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"run", "--once"}, {"status"}, {"inventory"}, {"enroll", "--secret", "x"}} {
		out, code := runBin(t, agentBin, append(args, "--config", conf)...)
		if code != 2 || !strings.Contains(out, conf+`:8: unknown key "intervall" (known: data, server, fingerprint,`) {
			t.Errorf("%v with a bad file: exit %d, want 2 and the file, line and key\n%s", args, code, out)
		}
	}
	if out, code := runBin(t, agentBin, "status", "--config", filepath.Join(t.TempDir(), "missing.conf")); code != 2 || !strings.Contains(out, "missing.conf") {
		t.Errorf("status with a missing --config file: exit %d\n%s", code, out)
	}
	p.terminate(t)
}
