package integration

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The README's command examples, run as written: every command of every
// ```sh block, in README order, with the built binaries, against a real
// server and real agents, so that the README cannot drift from the product.
// A command is run, or is the server the test starts, or is in readmeSkip
// with the reason; any other command fails the test.

// readmeSkip lists the README commands the test does not run, and why.
var readmeSkip = map[string]string{
	"make demo":       "runs the demo until Ctrl-C; TestDemoShowsASeatAndRunsAgainOnItsPorts runs its script",
	"make test":       "runs every test, this one included",
	"make packages":   "builds every package for every platform (minutes); installer/packaging's tests build and check each kind",
	"tally-agent run": "posts forever; 'tally-agent run --once' is run",
	"bin/tally-server serve --data /tmp/t --listen 127.0.0.1:0 --admin 127.0.0.1:0 --max-conns-per-addr -1 --max-handshakes-per-addr -1 &": "the load test's server, started by the load tests (server/integration/load_test.go)",
}

// readmeSkipPrefix is for families of commands: load runs of minutes,
// covered by the load tests with small fleets.
var readmeSkipPrefix = map[string]string{
	"bin/tally-load ": "a load run of seconds to minutes against /tmp/t; the load tests run each mode on a small fleet",
}

// readmeServe is the README's serve line: the server the test starts,
// with the same flags and its own ports.
const readmeServe = "tally-server serve --data /var/lib/tally-server"

// readmeFullForm lists the commands run a second time with every optional
// flag given (the first of its alternatives): those that change nothing.
var readmeFullForm = map[string]bool{
	"tally-server usage":       true,
	"tally-server events":      true,
	"tally-agent activations":  true,
	"tally-server enroll-info": true,
}

// readmeFullOnly lists the commands run only with every optional flag
// given: `computers delete 12 [--block]` blocks, so that the README's
// `computers blocked` and `computers unblock 12` have a machine to show.
var readmeFullOnly = map[string]bool{
	"tally-server computers delete": true,
}

// readmeDataLangs are the fenced blocks that hold no commands.
var readmeDataLangs = map[string]bool{"toml": true, "json": true, "text": true}

// readmeCommand is one command of a README block: its text as written
// (without its comment), and the line it starts on.
type readmeCommand struct {
	text    string
	comment string
	line    int
}

// readmeCommands parses README.md's ```sh blocks into commands: a trailing
// backslash continues a line, `# …` is a comment, and `a | b` outside
// brackets is two alternatives of one command (`statuses list | add X` is
// `statuses list` and `statuses add X`).
func readmeCommands(t *testing.T, path string) []readmeCommand {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cmds []readmeCommand
	in, inBlock, n, start := false, false, 0, 0
	var cont strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
		line := sc.Text()
		if strings.HasPrefix(line, "```") {
			// A block of commands in another language would escape the
			// test: only sh holds commands, the others data.
			lang := strings.TrimPrefix(line, "```")
			if !inBlock && lang != "sh" && !readmeDataLangs[lang] {
				t.Errorf("%s:%d: a fenced block of %q: mark commands sh (this test runs them), data one of %v", path, n, lang, readmeDataLangs)
			}
			inBlock = !inBlock
			in = inBlock && lang == "sh"
			continue
		}
		if !in {
			continue
		}
		if cont.Len() == 0 {
			start = n
		}
		if s := strings.TrimRight(line, " "); strings.HasSuffix(s, `\`) {
			cont.WriteString(strings.TrimSuffix(s, `\`) + " ")
			continue
		}
		cont.WriteString(line)
		text, comment := splitComment(cont.String())
		cont.Reset()
		text = strings.Join(strings.Fields(text), " ")
		if text == "" {
			continue
		}
		for _, alt := range alternatives(text) {
			cmds = append(cmds, readmeCommand{text: alt, comment: comment, line: start})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return cmds
}

// splitComment cuts a shell comment (a # after a space, outside quotes).
func splitComment(s string) (text, comment string) {
	quote := rune(0)
	for i, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote == 0 && (r == '"' || r == '\''):
			quote = r
		case quote == 0 && r == '#' && (i == 0 || s[i-1] == ' '):
			return s[:i], strings.TrimSpace(s[i+1:])
		}
	}
	return s, ""
}

// alternatives splits "tally-server statuses list | add X" into
// "tally-server statuses list" and "tally-server statuses add X".
func alternatives(text string) []string {
	words := strings.Split(text, " ")
	depth, cut := 0, []int{}
	for i, w := range words {
		depth += strings.Count(w, "[") - strings.Count(w, "]")
		if w == "|" && depth == 0 {
			cut = append(cut, i)
		}
	}
	if len(cut) == 0 {
		return []string{text}
	}
	first := words[:cut[0]]
	prefix := strings.Join(first[:len(first)-1], " ")
	alts := []string{strings.Join(first, " ")}
	for k, c := range cut {
		end := len(words)
		if k+1 < len(cut) {
			end = cut[k+1]
		}
		alts = append(alts, prefix+" "+strings.Join(words[c+1:end], " "))
	}
	return alts
}

// shellWords splits a command line as sh does, for the quoting the README
// uses (double and single quotes, no expansions).
func shellWords(s string) []string {
	var words []string
	var w strings.Builder
	quote, inWord := rune(0), false
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			w.WriteRune(r)
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == ' ':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}

// forms returns the command's words without its optional [ … ] groups, and
// with all of them (the first alternative of each a|b|c).
func forms(words []string) (minimal, full []string) {
	depth := 0
	for _, w := range words {
		opens := strings.HasPrefix(w, "[")
		if opens {
			depth++
		}
		closes := strings.HasSuffix(w, "]")
		clean := strings.TrimSuffix(strings.TrimPrefix(w, "["), "]")
		if depth == 0 {
			minimal = append(minimal, clean)
		}
		if i := strings.Index(clean, "|"); i >= 0 && depth > 0 {
			clean = clean[:i]
		}
		full = append(full, clean)
		if closes && depth > 0 {
			depth--
		}
	}
	return minimal, full
}

// readmeEnv is the world the README's commands run in: a real server, the
// agent of "this machine", and two more computers to retire and delete.
type readmeEnv struct {
	t                      *testing.T
	bin, work              string
	server                 *serverProc
	serverData, agentData  string
	main, retired, deleted string // computer IDs
	lost, lostData         string // a computer holding an activation, for activation return
	licenses               map[string]string
	activation, spareAct   string
	secretID               string
	installRoot            string // where the README's install and uninstall lines install
	tokenID                string
}

func (e *readmeEnv) exec(words []string) (string, int) {
	e.t.Helper()
	name := words[0]
	switch {
	case name == "tally-server" || name == "tally-agent":
		name = filepath.Join(e.bin, name)
	case strings.HasPrefix(name, "bin/"):
		name = filepath.Join(e.bin, strings.TrimPrefix(name, "bin/"))
	}
	cmd := exec.Command(name, words[1:]...)
	cmd.Dir = e.work
	cmd.Env = append(os.Environ(), "TALLY_DATA="+e.serverData, "TALLY_AGENT_DATA="+e.agentData,
		"TALLY_ADMIN_URL=", "TALLY_TOKEN=")
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("%v: %v", words, err)
	}
	return string(out), code
}

// substitute replaces the README's placeholders by the values of this
// environment; which computer `12` is depends on what the command does.
func (e *readmeEnv) substitute(cmd string, words []string) (out []string) {
	computer := e.main
	switch {
	case strings.HasPrefix(cmd, "tally-server computers retire "), strings.HasPrefix(cmd, "tally-server computers set-status "):
		computer = e.retired
	case strings.HasPrefix(cmd, "tally-server computers delete "), strings.HasPrefix(cmd, "tally-server computers unblock "):
		computer = e.deleted
	case strings.HasPrefix(cmd, "tally-server activation return "):
		computer = e.lost
	}
	license := e.licenses["monitor"]
	if strings.HasPrefix(cmd, "tally-server license remove ") {
		license = e.licenses["inventory"] // the monitor license stays, for allocate
	}
	activation := e.activation
	if strings.HasPrefix(cmd, "tally-server activation deactivate ") {
		activation = e.spareAct // the first stays active, for tally-agent activate
	}
	out = make([]string, len(words), len(words)+2)
	defer func() {
		// Install and uninstall lines run under a root of the test's,
		// never on this machine.
		if len(out) > 1 && (out[1] == "install" || out[1] == "uninstall") {
			out = append(out, "--root", e.installRoot)
		}
	}()
	for i, w := range words {
		out[i] = w
		switch w {
		case "/var/lib/tally-server", "DIR":
			w = e.serverData
		case "12":
			w = computer
		case "L-…":
			w = license
		case "ACT-XXXX-…", "ID":
			if strings.Contains(cmd, " activation ") || strings.Contains(cmd, "ACT-") {
				w = activation
			}
		case "s-kk52x35d":
			w = e.secretID
		case "t-uzmirq2g":
			w = e.tokenID
		case "tally.example.com:4433":
			w = e.server.addrs.Advertise
		case "8c7b…f69e":
			w = e.server.addrs.Fingerprint
		case "cs7p…":
			w = e.enrollSecret()
		case "P":
			w = "monitor"
		case "D":
			w = "a status of the README test"
		}
		if w != "" { // a value not known yet leaves the placeholder, which the command refuses
			out[i] = w
		}
	}
	return out
}

func (e *readmeEnv) enrollSecret() string {
	e.t.Helper()
	info, err := e.server.admin(e.t).EnrollInfo(e.t.Context())
	if err != nil {
		e.t.Fatal(err)
	}
	return info.Secret
}

// enrollSpare enrolls another computer with the built agent; it returns
// the computer's ID and the agent's data folder.
func (e *readmeEnv) enrollSpare(name string) (string, string) {
	e.t.Helper()
	dir := filepath.Join(e.t.TempDir(), name)
	out, code := e.exec([]string{"tally-agent", "enroll", "--server", e.server.addrs.Advertise, "--fingerprint", e.server.addrs.Fingerprint,
		"--secret", e.enrollSecret(), "--machine-id", "readme-" + name, "--data", dir})
	if code != 0 {
		e.t.Fatalf("enroll %s: %d %s", name, code, out)
	}
	if out, code := e.exec([]string{"tally-agent", "run", "--once", "--data", dir}); code != 0 {
		e.t.Fatalf("run %s: %d %s", name, code, out)
	}
	return regexp.MustCompile(`as computer (\d+)`).FindStringSubmatch(out)[1], dir
}

// before prepares what a command needs that the README leaves to the
// reader: a second license file to import, a lost machine that held a seat,
// a second Activation ID to deactivate.
func (e *readmeEnv) before(cmd string) {
	e.t.Helper()
	switch {
	case strings.HasPrefix(cmd, "tally-server license import monitor.lic inventory.lic"):
		// The README imports an inventory license it did not mint.
		out, code := e.exec([]string{"tally-server", "license", "issue", "--key", "./issuer/issuer.key", "--product", "inventory",
			"--seats", "10", "--out", "inventory.lic"})
		if code != 0 {
			e.t.Fatalf("mint inventory.lic: %d %s", code, out)
		}
		e.after("tally-server license issue ", out)
	case strings.HasPrefix(cmd, "tally-server computers task "):
		// A task is for the software-management plug-in, which runs tasks.
		for _, args := range [][]string{{"plugin", "install", "software-management"}, {"run", "--once"}} {
			if out, code := e.exec(append([]string{"tally-agent"}, append(args, "--data", e.agentData)...)); code != 0 {
				e.t.Fatalf("tally-agent %v: %d %s", args, code, out)
			}
		}
	case strings.HasPrefix(cmd, "tally-server activation return ") && e.activation != "":
		// The lost machine held a seat of the ID before it was lost.
		if out, code := e.exec([]string{"tally-agent", "activate", e.activation, "--data", e.lostData}); code != 0 {
			e.t.Logf("the lost machine could not activate %s: %d %s", e.activation, code, out)
		}
	case strings.HasPrefix(cmd, "tally-server admins ") && strings.Contains(cmd, "--password-file olga.pw"):
		if err := os.WriteFile(filepath.Join(e.work, "olga.pw"), []byte("a console password of the README test\n"), 0o600); err != nil {
			e.t.Fatal(err)
		}
	case strings.HasPrefix(cmd, "tally-server activation deactivate ") && e.spareAct == "":
		out, code := e.exec([]string{"tally-server", "activation", "create", "--product", "cad", "--quantity", "1"})
		if m := regexp.MustCompile(`ACT-[A-Z0-9-]+`).FindString(out); code == 0 && m != "" {
			e.spareAct = m
		}
	}
}

// after takes from a command's output the values later commands use.
func (e *readmeEnv) after(cmd, out string) {
	switch {
	case strings.HasPrefix(cmd, "tally-server license issue "):
		if m := regexp.MustCompile(`license (L-[a-z0-9]+): \d+ [a-z-]+ seats of ([a-z0-9-]+)`).FindStringSubmatch(out); m != nil {
			e.licenses[m[2]] = m[1]
		}
	case strings.HasPrefix(cmd, "tally-server activation create "):
		if m := regexp.MustCompile(`ACT-[A-Z0-9-]+`).FindString(out); m != "" {
			e.activation = m
		}
	case strings.HasPrefix(cmd, "tally-server admins token issue "):
		if m := regexp.MustCompile(`\bt-[a-z0-9]+\b`).FindString(out); m != "" {
			e.tokenID = m
		}
	case strings.HasPrefix(cmd, "tally-server secrets create "):
		if m := regexp.MustCompile(`\bs-[a-z0-9]+\b`).FindString(out); m != "" {
			e.secretID = m
		}
	case strings.HasPrefix(cmd, "tally-agent enroll "):
		if m := regexp.MustCompile(`as computer (\d+)`).FindStringSubmatch(out); m != nil {
			e.main = m[1]
		}
	}
}

func TestREADMECommandsRunAsWritten(t *testing.T) {
	serverBin, _ := binaries(t)
	e := &readmeEnv{t: t, bin: filepath.Dir(serverBin), work: t.TempDir(), serverData: filepath.Join(t.TempDir(), "server"),
		agentData: filepath.Join(t.TempDir(), "agent"), licenses: map[string]string{}, installRoot: t.TempDir()}
	cmds := readmeCommands(t, "../../README.md")
	if len(cmds) < 40 {
		t.Fatalf("found %d commands in README.md's sh blocks; the parser lost some", len(cmds))
	}
	served := false
	for _, c := range cmds {
		if c.text == readmeServe {
			e.server = startServerBinaryAt(t, serverBin, e.serverData, "127.0.0.1:0")
			served = true
			e.retired, _ = e.enrollSpare("to-retire")
			e.deleted, _ = e.enrollSpare("to-delete")
			e.lost, e.lostData = e.enrollSpare("lost")
			continue
		}
		if reason := readmeSkipReason(c.text); reason != "" {
			t.Logf("README.md:%d not run: %s (%s)", c.line, c.text, reason)
			continue
		}
		if !strings.HasPrefix(c.text, "tally-server ") && !strings.HasPrefix(c.text, "tally-agent ") {
			t.Errorf("README.md:%d: %q is neither run by this test nor in readmeSkip", c.line, c.text)
			continue
		}
		if e.server == nil {
			t.Fatalf("README.md:%d: %q comes before the serve line %q", c.line, c.text, readmeServe)
		}
		minimal, full := forms(shellWords(c.text))
		runs := [][]string{minimal}
		if readmeFullOnly[strings.Join(minimal[:min(3, len(minimal))], " ")] {
			runs = [][]string{full}
		}
		if readmeFullForm[strings.Join(minimal[:min(2, len(minimal))], " ")] && len(full) != len(minimal) {
			runs = append(runs, full)
		}
		for _, words := range runs {
			e.before(c.text)
			args := e.substitute(c.text, words)
			out, code := e.exec(args)
			e.after(c.text, out)
			want := readmeExit(c)
			if code != want {
				t.Errorf("README.md:%d: %s: exit %d, want %d\n%s", c.line, strings.Join(args, " "), code, want, indent(out))
			}
		}
	}
	if !served {
		t.Errorf("README.md has no %q line: the test starts its server with it", readmeServe)
	}
	for k := range readmeSkip {
		found := false
		for _, c := range cmds {
			found = found || c.text == k
		}
		if !found {
			t.Errorf("readmeSkip names %q, which is not in README.md any more: remove it", k)
		}
	}
}

func readmeSkipReason(text string) string {
	if r := readmeSkip[text]; r != "" {
		return r
	}
	for p, r := range readmeSkipPrefix {
		if strings.HasPrefix(text, p) {
			return r
		}
	}
	return ""
}

// readmeExit is the exit code a README line promises in its comment
// ("exit 20 if …"), when it promises one unconditionally; else 0.
func readmeExit(c readmeCommand) int {
	if m := regexp.MustCompile(`^exits? (\d+)$`).FindStringSubmatch(c.comment); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}

func indent(s string) string {
	return "\t" + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n\t")
}
