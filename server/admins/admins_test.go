package admins

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRoles(t *testing.T) {
	for _, r := range Roles {
		got, err := ParseRole(strings.ToUpper(r.String()))
		if err != nil || got != r {
			t.Errorf("ParseRole(%s) = %v, %v", r, got, err)
		}
	}
	for _, s := range []string{"", "root", "admins", "viewer "} {
		if _, err := ParseRole(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseRole(%q): %v", s, err)
		}
	}
	if !Admin.Allows(Operator) || !Operator.Allows(Viewer) || Viewer.Allows(Operator) || Operator.Allows(Admin) {
		t.Fatal("roles are not ordered viewer < operator < admin")
	}
}

func TestNames(t *testing.T) {
	for _, ok := range []string{"admin", "olga", "o.lga-2", "a@b.example", "x"} {
		if err := CheckName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "Olga", "-x", ".x", "a b", "a/b", "a:b", "system", "é", strings.Repeat("a", 65), "a\x00"} {
		if err := CheckName(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestPasswords(t *testing.T) {
	h, err := HashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	h2, _ := HashPasswordParams("correct horse battery", Params{Memory: 64, Time: 1, Threads: 1})
	if h == h2 || !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") || !strings.HasPrefix(h2, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("hashes %q %q: want salted argon2id with their costs", h, h2)
	}
	// Hashes made with other costs verify: the costs are read from the hash.
	if !VerifyPassword(h2, "correct horse battery") {
		t.Fatal("verify with other costs")
	}
	if !VerifyPassword(h, "correct horse battery") || VerifyPassword(h2, "correct horse batterY") || VerifyPassword(h2, "") {
		t.Fatal("verify")
	}
	for _, pw := range []string{"", "short", strings.Repeat("x", MaxPasswordLen+1)} {
		if _, err := HashPassword(pw); !errors.Is(err, ErrInvalid) {
			t.Errorf("password of %d characters accepted", len(pw))
		}
	}
	// Damaged or hostile stored hashes verify nothing and allocate nothing large.
	parts := strings.Split(h, "$")
	for _, bad := range []string{"", "$", "plain", "$argon2i$" + strings.Join(parts[2:], "$"),
		"$argon2id$v=18$" + strings.Join(parts[3:], "$"),
		"$argon2id$v=19$m=4194304,t=1,p=1$" + parts[4] + "$" + parts[5],
		"$argon2id$v=19$m=19456,t=1000,p=1$" + parts[4] + "$" + parts[5],
		"$argon2id$v=19$m=19456,t=2,p=0$" + parts[4] + "$" + parts[5],
		"$argon2id$v=19$m=19456,t=2,p=1$!!$" + parts[5],
		"$argon2id$v=19$m=19456,t=2,p=1$" + parts[4] + "$",
	} {
		if VerifyPassword(bad, "correct horse battery") {
			t.Errorf("%q verifies", bad)
		}
	}
}

// BenchmarkHashPassword measures a sign-in's cost at DefaultParams.
func BenchmarkHashPassword(b *testing.B) {
	for b.Loop() {
		if _, err := HashPassword("correct horse battery"); err != nil {
			b.Fatal(err)
		}
	}
}

func TestTokensAndSessions(t *testing.T) {
	tok, id, hash, err := NewToken()
	if err != nil || !strings.HasPrefix(tok, TokenPrefix) || len(tok) != len(TokenPrefix)+43 || !strings.HasPrefix(id, "t-") {
		t.Fatalf("NewToken: %q %q %v", tok, id, err)
	}
	if hash != HashSecret(tok) || strings.Contains(hash, tok) || len(hash) != 64 {
		t.Fatalf("hash %q", hash)
	}
	tok2, id2, _, _ := NewToken()
	s1, h1, _ := NewSessionID()
	s2, _, _ := NewSessionID()
	if tok == tok2 || id == id2 || s1 == s2 || h1 != HashSecret(s1) {
		t.Fatal("not random")
	}
	r := SessionRules{Idle: 10 * time.Minute, Absolute: time.Hour}
	at := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		seen, now time.Duration
		live      bool
	}{{0, 0, true}, {0, 9 * time.Minute, true}, {0, 10 * time.Minute, false}, {50 * time.Minute, 59 * time.Minute, true}, {59 * time.Minute, 60 * time.Minute, false}} {
		if got := r.Live(at, at.Add(c.seen), at.Add(c.now)); got != c.live {
			t.Errorf("seen +%s, now +%s: live %v", c.seen, c.now, got)
		}
	}
	if d := (SessionRules{}).WithDefaults(); d.Idle != DefaultSessionIdle || d.Absolute != DefaultSessionAbsolute {
		t.Fatalf("defaults %+v", d)
	}
}

func TestLimiter(t *testing.T) {
	at := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	l := NewLimiter(3, time.Minute)
	for i := 0; i < 3; i++ {
		if w := l.Wait("a", at); w != 0 {
			t.Fatalf("failure %d: wait %s", i, w)
		}
		l.Failed("a", at.Add(time.Duration(i)*time.Second))
	}
	if w := l.Wait("a", at.Add(10*time.Second)); w != 50*time.Second {
		t.Fatalf("after 3 failures: wait %s, want 50s", w)
	}
	if w := l.Wait("b", at); w != 0 {
		t.Fatal("one key's failures limited another")
	}
	if w := l.Wait("a", at.Add(time.Minute)); w != 0 {
		t.Fatalf("after the window: wait %s", w)
	}
	l.Failed("c", at)
	l.Succeeded("c")
	if len(l.fail) > 2 {
		t.Fatalf("remembers %d keys", len(l.fail))
	}
	// Bounded memory: a flood of addresses forgets the oldest.
	l.Keys = 100
	for i := 0; i < 1000; i++ {
		l.Failed(strings.Repeat("k", i%7)+string(rune('a'+i%26))+time.Duration(i).String(), at)
	}
	if len(l.fail) > 100 {
		t.Fatalf("remembers %d keys, bound 100", len(l.fail))
	}
}
