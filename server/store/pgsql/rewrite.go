// Package pgsql runs the SQL store's statements on PostgreSQL. The store
// (server/store/sqlstore) writes its SQL once, in the spelling SQLite and
// PostgreSQL share where there is one; Rewrite turns what differs (the
// placeholders, LIKE's case, a few functions) into PostgreSQL's spelling,
// and Open gives a database/sql handle over a pgx pool whose connections
// rewrite every statement on the way through.
package pgsql

import (
	"regexp"
	"strconv"
	"strings"
)

// rewrites are the constructs of SQLite's spelling that the store uses
// and PostgreSQL spells differently, applied to the statement's text
// outside its string literals before the placeholders are numbered.
var rewrites = []struct {
	re   *regexp.Regexp
	with string
}{
	// SQLite's LIKE ignores ASCII case; PostgreSQL's ILIKE does.
	{regexp.MustCompile(`(?i)\bLIKE\b`), "ILIKE"},
	// The scalar two-argument MAX and MIN (the aggregates take one).
	{regexp.MustCompile(`(?i)\bMAX\(0, MIN\(`), "GREATEST(0, LEAST("},
	{regexp.MustCompile(`(?i)\bjson_each\(\?\) (\w+) JOIN (\w+) (\w+) ON (\w+)\.id = (\w+)\.value`),
		"json_array_elements_text(CAST(? AS json)) $1(value) JOIN $2 $3 ON $4.id = CAST($5.value AS bigint)"},
	{regexp.MustCompile(`(?i)\btemp\.(\w+)`), "pg_temp.$1"},
}

// calls are the functions of SQLite's spelling that the store uses and
// PostgreSQL spells differently; their arguments may hold literals, so
// they are rewritten on the whole statement.
var calls = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`(?i)\bGROUP_CONCAT\(((?:[^()']|'[^']*')*)\)`), "string_agg(CAST($1 AS text), ',')"},
}

// Rewrite returns query in PostgreSQL's spelling: each ? becomes $N in
// order, ?N becomes $N, and the constructs of rewrites are replaced. Text
// inside string literals, quoted identifiers and comments is left as it is.
func Rewrite(query string) string {
	for _, r := range calls {
		query = r.re.ReplaceAllString(query, r.with)
	}
	var out strings.Builder
	out.Grow(len(query) + 16)
	n := 0
	code := 0 // start of the current stretch of code (outside literals)
	flush := func(end int) {
		out.WriteString(rewriteCode(query[code:end], &n))
	}
	for i := 0; i < len(query); i++ {
		switch c := query[i]; {
		case c == '\'' || c == '"':
			flush(i)
			j := i + 1
			for j < len(query) {
				if query[j] == c {
					if j+1 < len(query) && query[j+1] == c { // doubled quote
						j += 2
						continue
					}
					break
				}
				j++
			}
			if j >= len(query) {
				j = len(query) - 1
			}
			out.WriteString(query[i : j+1])
			i = j
			code = j + 1
		case c == '-' && i+1 < len(query) && query[i+1] == '-':
			flush(i)
			j := strings.IndexByte(query[i:], '\n')
			if j < 0 {
				j = len(query) - i - 1
			}
			out.WriteString(query[i : i+j+1])
			i += j
			code = i + 1
		}
	}
	if code < len(query) {
		flush(len(query))
	}
	return out.String()
}

// rewriteCode rewrites a stretch of code with no literal in it; n counts
// the placeholders numbered so far in the statement.
func rewriteCode(s string, n *int) string {
	for _, r := range rewrites {
		s = r.re.ReplaceAllString(s, r.with)
	}
	if !strings.Contains(s, "?") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '?' {
			b.WriteByte(s[i])
			continue
		}
		j := i + 1
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		b.WriteByte('$')
		if j > i+1 {
			b.WriteString(s[i+1 : j])
			i = j - 1
			continue
		}
		*n++
		b.WriteString(strconv.Itoa(*n))
	}
	return b.String()
}
