package adminapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/tallyhq/tally/server/adminapi"
	"github.com/tallyhq/tally/server/store"
)

// Lists page by a cursor: following next_after (next_before for events)
// visits every item once, in order, and a page never holds more than
// asked for.
func TestListsPageByCursor(t *testing.T) {
	srv, c := newAPI(t)
	ctx := context.Background()
	for i := range 7 {
		if _, err := c.CreateSecret(ctx, adminapi.CreateSecretRequest{Name: fmt.Sprint("site-", i)}); err != nil {
			t.Fatal(err)
		}
	}
	get := func(path string, out any) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %s", path, resp.Status)
		}
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	q := url.Values{"limit": {"3"}}
	for pages := 0; ; pages++ {
		var p adminapi.SecretPage
		get("/api/v1/secrets?"+q.Encode(), &p)
		if len(p.Secrets) > 3 || pages > 3 {
			t.Fatalf("page %d: %d secrets", pages, len(p.Secrets))
		}
		for _, s := range p.Secrets {
			names = append(names, s.Name)
		}
		if p.Next == "" {
			break
		}
		q.Set("after", p.Next)
	}
	slices.Sort(names) // the store's order is by creation, the same millisecond by ID
	if fmt.Sprint(names) != "[site-0 site-1 site-2 site-3 site-4 site-5 site-6]" {
		t.Fatalf("secrets paged: %v", names)
	}
	var ids []int64
	q = url.Values{"limit": {"2"}, "kind": {store.EventSecretCreated}}
	for {
		var p adminapi.EventPage
		get("/api/v1/events?"+q.Encode(), &p)
		if len(p.Events) > 2 {
			t.Fatalf("%d events on a page of 2", len(p.Events))
		}
		for i := len(p.Events) - 1; i >= 0; i-- {
			ids = append(ids, p.Events[i].ID)
		}
		if p.NextBefore == 0 {
			break
		}
		q.Set("before", fmt.Sprint(p.NextBefore))
	}
	if fmt.Sprint(ids) != "[7 6 5 4 3 2 1]" {
		t.Fatalf("events paged newest first: %v", ids)
	}
	ev, err := c.Events(ctx, url.Values{"limit": {"4"}})
	if err != nil || len(ev) != 4 || ev[0].ID != 4 || ev[3].ID != 7 {
		t.Fatalf("the client's newest 4 events: %+v %v", ev, err)
	}
}
