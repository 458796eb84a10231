package adminapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/tallyhq/tally/server/admins"
)

// The OpenAPI 3 document of the admin API is built from the route table
// (paths, methods, least roles) and the descriptions in apidocs.go
// (summaries, parameters, example requests and responses); the schemas are
// read from the Go types of the examples, so the document cannot drift
// from the payloads the handlers encode.

// Doc describes one route for the document.
type Doc struct {
	Summary string
	// Query lists the query parameters: name and meaning.
	Query [][2]string
	// Request is an example body (nil: none); its type gives the schema.
	Request any
	// Status is the success status (default 200); Response its example
	// body (nil with 204), or RawResponse a non-JSON one.
	Status      int
	Response    any
	RawResponse string
	// Errors lists the error statuses the route answers besides 401 and
	// 403 (every route may answer those).
	Errors []int
}

// Public routes: no token needed.
var publicDocs = map[string]Doc{
	"GET /healthz": {Summary: "Tell whether the server is up (no token needed).",
		Response: map[string]string{"status": "ok", "version": "1.4.0"}},
	"GET /api/openapi.json": {Summary: "This document (no token needed: it holds no data).",
		RawResponse: `{"openapi": "3.0.3", "info": {"title": "Tally admin API", …}, "paths": {…}}`},
}

var pathParam = regexp.MustCompile(`\{([a-z]+)\}`)

// Document returns the OpenAPI 3 document of routes: every route, its
// least role, parameters, schemas and examples. A route without a Doc is
// left out, which the tests catch.
func Document(routes []Route, version string) map[string]any {
	paths := map[string]map[string]any{}
	add := func(method, path string, d Doc, role string) {
		op := map[string]any{"summary": d.Summary, "operationId": operationID(method, path)}
		if role == "" {
			op["security"] = []any{}
		} else {
			op["description"] = fmt.Sprintf("Needs the role %s or higher.", role)
			op["x-tally-role"] = role
		}
		var params []any
		for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]string{"type": "string"}})
		}
		for _, q := range d.Query {
			params = append(params, map[string]any{"name": q[0], "in": "query", "description": q[1], "schema": map[string]string{"type": "string"}})
		}
		if params != nil {
			op["parameters"] = params
		}
		if d.Request != nil {
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{"application/json": map[string]any{
				"schema": schemaOf(reflect.TypeOf(d.Request)), "example": d.Request}}}
		}
		status := d.Status
		if status == 0 {
			status = http.StatusOK
		}
		ok := map[string]any{"description": http.StatusText(status)}
		switch {
		case d.RawResponse != "" && path == "/metrics":
			ok["content"] = map[string]any{"text/plain": map[string]any{"schema": map[string]string{"type": "string"}, "example": d.RawResponse}}
		case d.RawResponse != "":
			ok["content"] = map[string]any{"application/json": map[string]any{"schema": map[string]string{"type": "object"}}}
		case d.Response != nil:
			ok["content"] = map[string]any{"application/json": map[string]any{"schema": schemaOf(reflect.TypeOf(d.Response)), "example": d.Response}}
		}
		resp := map[string]any{fmt.Sprint(status): ok}
		errs := d.Errors
		if role != "" {
			errs = append([]int{http.StatusUnauthorized, http.StatusForbidden, http.StatusTooManyRequests}, errs...)
		}
		for _, e := range errs {
			resp[fmt.Sprint(e)] = map[string]any{"description": http.StatusText(e), "x-tally-code": ErrorCode(e),
				"content": map[string]any{"application/json": map[string]any{"schema": map[string]string{"$ref": "#/components/schemas/Error"}}}}
		}
		op["responses"] = resp
		if paths[path] == nil {
			paths[path] = map[string]any{}
		}
		paths[path][strings.ToLower(method)] = op
	}
	for p, d := range publicDocs {
		m, path, _ := strings.Cut(p, " ")
		add(m, path, d, "")
	}
	for _, r := range routes {
		if d, ok := routeDocs[r.Pattern()]; ok {
			add(r.Method, r.Path, d, r.Role.String())
		}
	}
	return map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{"title": "Tally admin API", "version": version,
			"description": "The administration API of tally-server: JSON over HTTP, every route behind an admin's bearer token " +
				"(the data folder's admin-token is the first admin's; more with 'tally-server admins token issue NAME'). " +
				"Roles: viewer < operator < admin. Errors are {\"error\": sentence, \"code\": code}; lists are paged with a cursor " +
				"(after=next_after, or before=next_before for events) and at most 1000 items a page (10000 computers); 429 answers carry Retry-After."},
		"components": map[string]any{
			"securitySchemes": map[string]any{"bearer": map[string]string{"type": "http", "scheme": "bearer"}},
			"schemas":         map[string]any{"Error": schemaOf(reflect.TypeOf(ErrorBody{}))},
		},
		"security": []any{map[string]any{"bearer": []string{}}},
		"paths":    paths,
	}
}

func operationID(method, path string) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(method))
	for _, part := range strings.Split(strings.TrimPrefix(path, "/api/v1"), "/") {
		part = strings.Trim(part, "{}")
		for _, w := range strings.FieldsFunc(part, func(r rune) bool { return r == '-' || r == '.' || r == '_' }) {
			b.WriteString(strings.ToUpper(w[:1]) + w[1:])
		}
	}
	return b.String()
}

var timeType = reflect.TypeOf(time.Time{})

// schemaOf is the JSON schema of what encoding/json makes of t.
func schemaOf(t reflect.Type) map[string]any {
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t == reflect.TypeOf(admins.Role(0)):
		return map[string]any{"type": "string"}
	}
	switch t.Kind() {
	case reflect.Pointer:
		s := schemaOf(t.Elem())
		s["nullable"] = true
		return s
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Slice, reflect.Array:
		return map[string]any{"type": "array", "items": schemaOf(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": schemaOf(t.Elem())}
	case reflect.Struct:
		props := map[string]any{}
		var required []string
		addFields(t, props, &required)
		s := map[string]any{"type": "object", "properties": props}
		if len(required) > 0 {
			sort.Strings(required)
			s["required"] = required
		}
		return s
	}
	return map[string]any{}
}

func addFields(t reflect.Type, props map[string]any, required *[]string) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				addFields(ft, props, required)
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		props[name] = schemaOf(f.Type)
		if !strings.Contains(opts, "omitempty") && f.Type.Kind() != reflect.Pointer {
			*required = append(*required, name)
		}
	}
}

func (a *api) openAPI(w http.ResponseWriter, r *http.Request) {
	doc := Document(a.routes, a.cfg.Info.Version)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(doc)
}
