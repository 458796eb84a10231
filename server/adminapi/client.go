package adminapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tallyhq/tally/server/store"
)

// Client calls the admin API of a running server.
type Client struct {
	BaseURL string
	Token   string
	HTTP    *http.Client

	zone atomic.Pointer[time.Location] // the server's, from its last answer
}

// Zone is the server's time zone as its last answer named it, or nil
// before any answer or when it named none (or one unknown here).
func (c *Client) Zone() *time.Location { return c.zone.Load() }

// NewClient returns a client for the server at baseURL.
func NewClient(baseURL, token string) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("admin URL %q: want http://HOST:PORT or https://HOST:PORT", baseURL)
	}
	if token == "" {
		return nil, errors.New("no admin token: pass --data DIR on the server host, or --token (or TALLY_TOKEN)")
	}
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), Token: token, HTTP: &http.Client{Timeout: 60 * time.Second}}, nil
}

// APIError is an error answered by the server: its HTTP status, sentence
// and code (ErrorCode's).
type APIError struct {
	Code    int
	Message string
	Kind    string
	// RetryAfter is the server's Retry-After, zero if none.
	RetryAfter time.Duration
}

func (e *APIError) Error() string { return e.Message }

// UnreachableError says the admin API could not be reached at all (the
// CLI exits 4 on it, as the agent does for an unreachable server).
type UnreachableError struct {
	URL string
	Err error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach the server's admin API at %s: %v (is tally-server running? check --data, --admin-url or TALLY_ADMIN_URL)", e.URL, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// IsNotFound reports whether err is the server's "not found".
func IsNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == http.StatusNotFound
}

// Do sends a request and decodes the JSON answer into out (unless nil).
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if rb, ok := in.(RawBody); ok {
		body = bytes.NewReader(rb.Data)
	} else if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	if rb, ok := in.(RawBody); ok {
		req.Header.Set("Content-Type", rb.ContentType)
	} else if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return &UnreachableError{URL: c.BaseURL, Err: errors.Unwrap(err)}
	}
	defer resp.Body.Close()
	if name := resp.Header.Get(ZoneHeader); name != "" {
		if loc, err := time.LoadLocation(name); err == nil {
			c.zone.Store(loc)
		}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return fmt.Errorf("read answer from %s: %w", c.BaseURL, err)
	}
	if resp.StatusCode >= 300 {
		var eb ErrorBody
		ae := &APIError{Code: resp.StatusCode, Message: fmt.Sprintf("server answered %s", resp.Status), Kind: ErrorCode(resp.StatusCode)}
		if json.Unmarshal(data, &eb) == nil && eb.Error != "" {
			ae.Message = eb.Error
			if eb.Code != "" {
				ae.Kind = eb.Code
			}
		}
		if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && n > 0 {
			ae.RetryAfter = time.Duration(n) * time.Second
		}
		return ae
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("unexpected answer from %s%s: %w", c.BaseURL, path, err)
	}
	return nil
}

// Computers lists every live computer, page after page.
func (c *Client) Computers(ctx context.Context) ([]store.Computer, error) {
	out := []store.Computer{}
	q := url.Values{"limit": {fmt.Sprint(store.MaxComputerLimit)}}
	for {
		page, err := c.ListComputers(ctx, q)
		if err != nil {
			return nil, err
		}
		out = append(out, page.Computers...)
		if page.Next == 0 {
			return out, nil
		}
		q.Set("after", fmt.Sprint(page.Next))
	}
}

// ListComputers returns one page of computers; q holds the filters of
// GET /api/v1/computers (hostname, status, product, plugin,
// not_seen_since, flag, after, limit).
func (c *Client) ListComputers(ctx context.Context, q url.Values) (store.ComputerPage, error) {
	var out store.ComputerPage
	path := "/api/v1/computers"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	return out, c.Do(ctx, http.MethodGet, path, nil, &out)
}

// Computer returns one computer with its basic inventory and seats.
func (c *Client) Computer(ctx context.Context, id int64) (store.Computer, error) {
	var out store.Computer
	return out, c.Do(ctx, http.MethodGet, fmt.Sprintf("/api/v1/computers/%d", id), nil, &out)
}

// ComputerByRef returns the computer named by an ID, a hostname or a
// machine ID; an ambiguous hostname is an error listing the candidates.
func (c *Client) ComputerByRef(ctx context.Context, ref string) (store.Computer, error) {
	var out store.Computer
	return out, c.Do(ctx, http.MethodGet, "/api/v1/computers/"+url.PathEscape(ref), nil, &out)
}

// BlockedMachines lists the machines deleted with --block.
func (c *Client) BlockedMachines(ctx context.Context) ([]store.Blocked, error) {
	var out []store.Blocked
	return out, c.Do(ctx, http.MethodGet, "/api/v1/blocked", nil, &out)
}

// Unblock lets a blocked machine enroll again.
func (c *Client) Unblock(ctx context.Context, id int64) (store.Blocked, error) {
	var out store.Blocked
	return out, c.Do(ctx, http.MethodPost, fmt.Sprintf("/api/v1/blocked/%d/unblock", id), nil, &out)
}

// EnrollInfo returns the enrollment line for agents.
func (c *Client) EnrollInfo(ctx context.Context) (EnrollInfo, error) {
	var out EnrollInfo
	return out, c.Do(ctx, http.MethodGet, "/api/v1/enroll-info", nil, &out)
}

// EnrollInfoFor returns the enrollment line with the secret of that ID or
// name ("" for the newest active one).
func (c *Client) EnrollInfoFor(ctx context.Context, secret string) (EnrollInfo, error) {
	var out EnrollInfo
	path := "/api/v1/enroll-info"
	if secret != "" {
		path += "?secret=" + url.QueryEscape(secret)
	}
	return out, c.Do(ctx, http.MethodGet, path, nil, &out)
}

// Secrets lists enrollment secrets, page after page.
func (c *Client) Secrets(ctx context.Context) ([]store.Secret, error) {
	return allPages(ctx, c, "/api/v1/secrets", func(p *SecretPage) ([]store.Secret, string) { return p.Secrets, p.Next })
}

// allPages reads a list page after page, following next_after.
func allPages[P any, T any](ctx context.Context, c *Client, path string, items func(*P) ([]T, string)) ([]T, error) {
	out := []T{}
	path, raw, _ := strings.Cut(path, "?")
	q, err := url.ParseQuery(raw)
	if err != nil {
		return nil, err
	}
	q.Set("limit", fmt.Sprint(store.MaxPageLimit))
	for {
		var p P
		if err := c.Do(ctx, http.MethodGet, path+"?"+q.Encode(), nil, &p); err != nil {
			return nil, err
		}
		its, next := items(&p)
		out = append(out, its...)
		if next == "" {
			return out, nil
		}
		q.Set("after", next)
	}
}

// CreateSecret creates an enrollment secret.
func (c *Client) CreateSecret(ctx context.Context, req CreateSecretRequest) (store.Secret, error) {
	var out store.Secret
	return out, c.Do(ctx, http.MethodPost, "/api/v1/secrets", req, &out)
}

// RevokeSecret revokes an enrollment secret.
func (c *Client) RevokeSecret(ctx context.Context, id string) (store.Secret, error) {
	var out store.Secret
	return out, c.Do(ctx, http.MethodPost, "/api/v1/secrets/"+url.PathEscape(id)+"/revoke", nil, &out)
}

// Events reads the audit log: the newest q's "limit" events (all without
// one), oldest first, page after page.
func (c *Client) Events(ctx context.Context, q url.Values) ([]store.Event, error) {
	q2 := url.Values{}
	for k, v := range q {
		q2[k] = v
	}
	want := 0
	if s := q2.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("limit %q is not a positive number", s)
		}
		want = n
	}
	var pages [][]store.Event
	got := 0
	for {
		page := store.MaxPageLimit
		if want > 0 {
			page = min(page, want-got)
		}
		q2.Set("limit", strconv.Itoa(page))
		var p EventPage
		if err := c.Do(ctx, http.MethodGet, "/api/v1/events?"+q2.Encode(), nil, &p); err != nil {
			return nil, err
		}
		pages = append(pages, p.Events)
		got += len(p.Events)
		if p.NextBefore == 0 || (want > 0 && got >= want) {
			break
		}
		q2.Set("before", strconv.FormatInt(p.NextBefore, 10))
	}
	out := make([]store.Event, 0, got)
	for i := len(pages) - 1; i >= 0; i-- {
		out = append(out, pages[i]...)
	}
	// In time order, as the log reads: an aggregated discard is stamped
	// with its latest discard, after events of higher IDs.
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].At.Equal(out[j].At) {
			return out[i].At.Before(out[j].At)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}
