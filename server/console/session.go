package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/tallyhq/tally/server/adminapi"
	"github.com/tallyhq/tally/server/admins"
	"github.com/tallyhq/tally/server/store"
)

// sessionAuth signs admins in and out of the console. A session is a
// random identifier in an HttpOnly, SameSite=Strict cookie; the server
// keeps only its hash, with its admin and times, so that a session ends
// for good at logout, on expiry (idle and absolute) and when its admin is
// removed or has its password changed.
type sessionAuth struct {
	admins store.Admins
	rules  admins.SessionRules
	now    func() time.Time
	// Failed sign-ins are limited per client address and per admin name.
	byAddr, byName *admins.Limiter
}

// sessionTouchEvery is how often a session's last use is written: often
// enough for the idle timeout, rarely enough that browsing costs no commit
// per page.
const sessionTouchEvery = 30 * time.Second

func newSessionAuth(cfg Config) (*sessionAuth, error) {
	as := cfg.Admins
	if as == nil {
		var ok bool
		if as, ok = cfg.Store.(store.Admins); !ok {
			return nil, errors.New("console: the store keeps no admins")
		}
	}
	if cfg.Token != "" {
		if _, err := as.EnsureFirstAdmin(context.Background(), admins.HashSecret(cfg.Token)); err != nil {
			return nil, fmt.Errorf("console: first admin: %w", err)
		}
	}
	return &sessionAuth{
		admins: as,
		rules:  cfg.Sessions.WithDefaults(),
		now:    cfg.Dates.Now,
		byAddr: admins.NewLimiter(admins.DefaultLoginFailures, admins.DefaultLoginWindow),
		byName: admins.NewLimiter(admins.DefaultLoginFailures, admins.DefaultLoginWindow),
	}, nil
}

// Viewer returns the admin signed in to the console for this request, and
// their role (Principal.Role): what the pages show and allow.
func Viewer(r *http.Request) (adminapi.Principal, bool) {
	p, ok := adminapi.PrincipalOf(r.Context())
	return p, ok && p.Via == "session"
}

// session returns the live session of the request's cookie.
func (s *sessionAuth) session(r *http.Request) (adminapi.Principal, string, bool) {
	ck, err := r.Cookie(cookieName)
	if err != nil || ck.Value == "" || len(ck.Value) > 128 {
		return adminapi.Principal{}, "", false
	}
	hash := admins.HashSecret(ck.Value)
	ss, err := s.admins.Session(r.Context(), hash)
	if err != nil {
		return adminapi.Principal{}, "", false
	}
	now := s.now()
	if !s.rules.Live(ss.CreatedAt, ss.LastSeen, now) {
		_ = s.admins.DeleteSession(r.Context(), hash)
		return adminapi.Principal{}, "", false
	}
	if now.Sub(ss.LastSeen) >= sessionTouchEvery {
		if err := s.admins.TouchSession(r.Context(), hash); err != nil {
			return adminapi.Principal{}, "", false
		}
	}
	role, err := admins.ParseRole(ss.Role)
	if err != nil {
		return adminapi.Principal{}, "", false
	}
	return adminapi.Principal{Name: ss.Admin, Role: role, RoleName: role.String(), Via: "session"}, hash, true
}

func (c *Console) signedIn(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _, ok := c.auth.session(r)
		if !ok {
			http.Redirect(w, r, "/login", http.StatusFound)
			return
		}
		h(w, r.WithContext(adminapi.WithPrincipal(r.Context(), p)))
	})
}

func (c *Console) loginForm(w http.ResponseWriter, r *http.Request) {
	c.render(w, "login", http.StatusOK, page{Title: "Sign in"})
}

// login signs in by name and password, or by an API token (the data
// folder's admin-token, or any admin's).
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	s := c.auth
	fail := func(code int, msg string) {
		c.render(w, "login", code, page{Title: "Sign in", Error: msg})
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := r.ParseForm(); err != nil {
		fail(http.StatusBadRequest, "The sign-in form could not be read: send a name and password, or a token.")
		return
	}
	name := strings.TrimSpace(r.PostForm.Get("name"))
	password, token := r.PostForm.Get("password"), strings.TrimSpace(r.PostForm.Get("token"))
	now, addr := s.now(), adminapi.ClientAddr(r)
	wait := s.byAddr.Wait(addr, now)
	if name != "" {
		wait = max(wait, s.byName.Wait(name, now))
	}
	if wait > 0 {
		adminapi.RetryAfter(w, wait)
		fail(http.StatusTooManyRequests, fmt.Sprintf("Too many failed sign-ins: try again in %s.", wait.Round(time.Second)))
		return
	}
	var who string
	switch {
	case token != "":
		if len(token) > 512 {
			break
		}
		if acc, _, err := s.admins.TokenAdmin(r.Context(), admins.HashSecret(token)); err == nil {
			who = acc.Name
		}
	case name != "" && password != "":
		acc, hash, err := s.admins.AdminLogin(r.Context(), name)
		if err != nil || hash == "" {
			admins.VerifyPassword(admins.DummyHash, password)
		} else if admins.VerifyPassword(hash, password) {
			who = acc.Name
		}
	default:
		fail(http.StatusBadRequest, "Give your name and password, or a token.")
		return
	}
	if who == "" {
		s.byAddr.Failed(addr, now)
		if name != "" {
			s.byName.Failed(name, now)
		}
		fail(http.StatusUnauthorized, "Wrong name, password or token.")
		return
	}
	s.byAddr.Succeeded(addr)
	s.byName.Succeeded(who)
	// Expired sessions are swept at each sign-in: they are refused anyway.
	if _, err := s.admins.DeleteSessionsBefore(r.Context(), now.Add(-s.rules.Absolute), now.Add(-s.rules.Idle)); err != nil {
		c.log.Warn("console: sweep expired sessions", "err", err)
	}
	id, hash, err := admins.NewSessionID()
	if err != nil {
		c.serverError(w, err)
		return
	}
	if _, err := s.admins.CreateSession(r.Context(), hash, who); err != nil {
		c.serverError(w, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: id, Path: "/", HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
		MaxAge: int(s.rules.Absolute.Seconds())})
	http.Redirect(w, r, "/computers", http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	if ck, err := r.Cookie(cookieName); err == nil && ck.Value != "" && len(ck.Value) <= 128 {
		if err := c.auth.admins.DeleteSession(r.Context(), admins.HashSecret(ck.Value)); err != nil {
			c.serverError(w, err)
			return
		}
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
