package adminapi

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tallyhq/tally/server/admins"
	"github.com/tallyhq/tally/server/store"
)

// Principal is who a request acts as: an admin, by a token or a console
// session, and the role that admin has now.
type Principal struct {
	Name string      `json:"name"`
	Role admins.Role `json:"-"`
	// RoleName is Role's name, for JSON.
	RoleName string `json:"role"`
	// Via is "token" or "session".
	Via string `json:"via"`
	// TokenID is the token's ID when Via is "token".
	TokenID string `json:"token_id,omitempty"`
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p, and naming p as the actor of
// whatever the store records in it.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return store.WithActor(context.WithValue(ctx, principalKey{}, p), p.Name)
}

// PrincipalOf returns the principal of an authenticated request.
func PrincipalOf(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// actor names who acts in audit records: the authenticated admin.
func actor(r *http.Request) string {
	if p, ok := PrincipalOf(r.Context()); ok {
		return p.Name
	}
	return store.ActorAdmin
}

// maxTokenGuesses is how many wrong tokens one client address may present
// within admins.DefaultLoginWindow before it is answered 429.
const maxTokenGuesses = 20

// ClientAddr is the address rate limits count a request under: the
// remote IP (an IPv6 /64 as one), never a header a client could forge.
func ClientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
	return host
}

// RetryAfter sets the Retry-After header to d in whole seconds, at least one.
func RetryAfter(w http.ResponseWriter, d time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Max(1, math.Ceil(d.Seconds())))))
}

// auth lets through requests whose bearer token belongs to an admin of at
// least role min: none or a wrong one is 401, a lower role 403.
func (a *api) auth(min admins.Role, next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		tok = strings.TrimSpace(tok)
		if !ok || tok == "" {
			unauthorized(w, "no admin token: pass 'Authorization: Bearer TOKEN' (the data folder's admin-token, or a token from 'tally-server admins token issue NAME')")
			return
		}
		addr, now := ClientAddr(r), a.cfg.Dates.Now()
		if wait := a.guess.Wait(addr, now); wait > 0 {
			RetryAfter(w, wait)
			writeError(w, http.StatusTooManyRequests, fmt.Sprintf("too many wrong admin tokens from %s: try again in %s", addr, wait.Round(time.Second)))
			return
		}
		p, err := a.principal(r.Context(), tok)
		if errors.Is(err, store.ErrNotFound) {
			a.guess.Failed(addr, now)
			unauthorized(w, "wrong, revoked or removed admin token: pass the data folder's admin-token, or a token from 'tally-server admins token issue NAME', as 'Authorization: Bearer TOKEN'")
			return
		}
		if err != nil {
			a.fail(w, r, err)
			return
		}
		if !p.Role.Allows(min) {
			writeError(w, http.StatusForbidden, fmt.Sprintf("%s has the role %s; %s %s needs %s or higher", p.Name, p.Role, r.Method, r.URL.Path, min))
			return
		}
		if name := a.cfg.Dates.zone().String(); name != "Local" {
			w.Header().Set(ZoneHeader, name)
		}
		next(w, r.WithContext(WithPrincipal(r.Context(), p)))
	})
}

func unauthorized(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="tally"`)
	writeError(w, http.StatusUnauthorized, msg)
}

// principal finds the admin holding a token.
func (a *api) principal(ctx context.Context, tok string) (Principal, error) {
	if a.admins == nil {
		// A store without admins (none in this repository): the data
		// folder's token alone, as the first admin.
		if CheckToken(tok, a.cfg.Token) {
			return Principal{Name: store.FirstAdmin, Role: admins.Admin, RoleName: "admin", Via: "token"}, nil
		}
		return Principal{}, store.ErrNotFound
	}
	if len(tok) > 512 {
		return Principal{}, store.ErrNotFound
	}
	acc, t, err := a.admins.TokenAdmin(ctx, admins.HashSecret(tok))
	if err != nil {
		return Principal{}, err
	}
	role, err := admins.ParseRole(acc.Role)
	if err != nil {
		return Principal{}, fmt.Errorf("admin %s: %w", acc.Name, err)
	}
	return Principal{Name: acc.Name, Role: role, RoleName: role.String(), Via: "token", TokenID: t.ID}, nil
}

func (a *api) whoami(w http.ResponseWriter, r *http.Request) {
	p, _ := PrincipalOf(r.Context())
	writeJSON(w, http.StatusOK, p)
}

// Whoami returns the admin the client's token belongs to.
func (c *Client) Whoami(ctx context.Context) (Principal, error) {
	var out Principal
	return out, c.Do(ctx, http.MethodGet, "/api/v1/whoami", nil, &out)
}
