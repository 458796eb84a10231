package adminapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
)

// Markdown renders an OpenAPI document made by Document as docs/API.md:
// each route with its role, parameters, an example request (curl) and an
// example response.
func Markdown(doc map[string]any) string {
	var b strings.Builder
	info := doc["info"].(map[string]any)
	b.WriteString("# The admin API\n\n")
	b.WriteString("<!-- Generated from the OpenAPI document the server serves at /api/openapi.json; `go test ./server/adminapi -run TestAPIDoc -update` writes it again. -->\n\n")
	b.WriteString(info["description"].(string) + "\n\n")
	b.WriteString("The examples use `TALLY_ADMIN_URL` (e.g. `http://127.0.0.1:8080`) and `TALLY_TOKEN` (an admin's token).\n\n")
	b.WriteString("| status | code |\n| --- | --- |\n")
	for _, s := range []int{400, 401, 403, 404, 409, 413, 422, 429, 500, 503, 507} {
		fmt.Fprintf(&b, "| %d %s | `%s` |\n", s, http.StatusText(s), ErrorCode(s))
	}
	b.WriteString("\n")
	paths := doc["paths"].(map[string]map[string]any)
	var keys []string
	for p := range paths {
		keys = append(keys, p)
	}
	sort.Strings(keys)
	b.WriteString("## Routes\n\n| method | path | role | what |\n| --- | --- | --- | --- |\n")
	type op struct {
		method, path string
		op           map[string]any
	}
	var ops []op
	for _, p := range keys {
		for _, m := range []string{"get", "post", "put", "patch", "delete"} {
			if o, ok := paths[p][m].(map[string]any); ok {
				ops = append(ops, op{strings.ToUpper(m), p, o})
			}
		}
	}
	for _, o := range ops {
		role, _ := o.op["x-tally-role"].(string)
		if role == "" {
			role = "none"
		}
		fmt.Fprintf(&b, "| %s | [`%s`](#%s) | %s | %s |\n", o.method, o.path, anchor(o.method, o.path), role, o.op["summary"])
	}
	for _, o := range ops {
		fmt.Fprintf(&b, "\n### %s %s\n\n%s", o.method, o.path, o.op["summary"])
		if d, ok := o.op["description"].(string); ok {
			b.WriteString(" " + d)
		}
		b.WriteString("\n\n")
		if ps, ok := o.op["parameters"].([]any); ok {
			n := 0
			for _, p := range ps {
				pm := p.(map[string]any)
				if pm["in"] == "query" {
					fmt.Fprintf(&b, "- `%s` (query): %s\n", pm["name"], pm["description"])
					n++
				}
			}
			if n > 0 {
				b.WriteString("\n")
			}
		}
		path := examplePath(o.method, o.path)
		var query string
		if o.method == "GET" && strings.HasPrefix(o.path, "/api/v1/") {
			query = exampleQuery(o.path)
		}
		b.WriteString("```sh\ncurl -s")
		if _, ok := o.op["x-tally-role"]; ok {
			b.WriteString(` -H "Authorization: Bearer $TALLY_TOKEN"`)
		}
		if o.method != "GET" {
			b.WriteString(" -X " + o.method)
		}
		if rb, ok := o.op["requestBody"].(map[string]any); ok {
			ex := rb["content"].(map[string]any)["application/json"].(map[string]any)["example"]
			body, _ := json.Marshal(ex)
			fmt.Fprintf(&b, " -H 'Content-Type: application/json' -d '%s'", strings.ReplaceAll(string(body), "'", `'\''`))
		}
		fmt.Fprintf(&b, " \"$TALLY_ADMIN_URL%s%s\"\n```\n\n", path, query)
		resps := o.op["responses"].(map[string]any)
		var codes []string
		for c := range resps {
			codes = append(codes, c)
		}
		sort.Strings(codes)
		ok := codes[0]
		r := resps[ok].(map[string]any)
		fmt.Fprintf(&b, "Answer `%s %s`", ok, r["description"])
		if content, has := r["content"].(map[string]any); has {
			for ct, v := range content {
				ex, has := v.(map[string]any)["example"]
				if !has {
					b.WriteString(":\n\n```json\n{ \"openapi\": \"3.0.3\", … }\n```\n")
					break
				}
				if s, isText := ex.(string); isText && ct == "text/plain" {
					fmt.Fprintf(&b, ":\n\n```\n%s```\n", s)
					break
				}
				out, _ := json.MarshalIndent(ex, "", "  ")
				fmt.Fprintf(&b, ":\n\n```json\n%s\n```\n", out)
			}
		} else {
			b.WriteString(", no body.\n")
		}
		if len(codes) > 1 {
			b.WriteString("\nErrors:")
			for _, c := range codes[1:] {
				fmt.Fprintf(&b, " %s `%s`", c, resps[c].(map[string]any)["x-tally-code"])
			}
			b.WriteString(".\n")
		}
	}
	return b.String()
}

// anchor is the id GitHub gives a "### METHOD /path" heading.
func anchor(method, path string) string {
	s := strings.ToLower(method + " " + path)
	var b strings.Builder
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
			b.WriteRune(c)
		case c == ' ':
			b.WriteRune('-')
		}
	}
	return b.String()
}

// examplePath fills a route's parameters with the examples' values.
func examplePath(method, path string) string {
	r := strings.NewReplacer("{computer}", "12", "{product}", "inventory")
	path = r.Replace(path)
	var id, name string
	switch {
	case strings.HasPrefix(path, "/api/v1/computers/"):
		id = "12"
	case strings.HasPrefix(path, "/api/v1/blocked/"):
		id = "9"
	case strings.HasPrefix(path, "/api/v1/licenses/"):
		id = "L-7kq2m4xw9c1p"
	case strings.HasPrefix(path, "/api/v1/activations/"):
		id = "ACT-F6333I3S-RQEXRTTO-6AGNBWED-KJDWMY6I"
	case strings.HasPrefix(path, "/api/v1/secrets/"):
		id = "s-q3v7xk2a"
	case strings.HasPrefix(path, "/api/v1/tokens/"):
		id = "t-uzmirq2g"
	}
	switch {
	case strings.HasPrefix(path, "/api/v1/admins/"):
		name = "olga"
	case method == "DELETE":
		name = "cad"
	default:
		name = "inventory"
	}
	return strings.NewReplacer("{id}", id, "{name}", name).Replace(path)
}

func exampleQuery(path string) string {
	switch path {
	case "/api/v1/computers":
		return "?status=Active&hostname=web-*&limit=100"
	case "/api/v1/events":
		return "?since=24h&computer=12&limit=100"
	}
	return ""
}
