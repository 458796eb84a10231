package addrlist

import (
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"a.example:7443", []string{"a.example:7443"}},
		{"a:7443,b:7443", []string{"a:7443", "b:7443"}},
		{" a:7443 , b:7443 ,[::1]:7443", []string{"a:7443", "b:7443", "[::1]:7443"}},
	} {
		got, err := Parse(tc.in)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("Parse(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
		if again, err := Parse(Join(got)); err != nil || !slices.Equal(again, got) {
			t.Errorf("Parse(Join(%q)) = %q, %v", got, again, err)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "no server address"},
		{"  ", "no server address"},
		{"a:7443,,b:7443", "address 2 of 3"},
		{"a:7443,", "address 2 of 2"},
		{",a:7443", "address 1 of 2"},
		{"a:7443,b", "server address 2: \"b\" is not HOST:PORT"},
		{"a:0", "not a port number"},
		{"a:70000", "not a port number"},
		{"a:http", "not a port number"},
		{":7443", "not HOST:PORT"},
		{"a:7443,b:7443,A:7443", "A:7443 is listed twice (1 and 3)"},
		{strings.Repeat("a:1,", Max) + "a:2", "at most 16"},
	} {
		_, err := Parse(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v; want an error with %q", tc.in, err, tc.want)
		}
	}
}
