package protocol

import (
	"strings"
	"testing"
)

func TestValidName(t *testing.T) {
	for s, want := range map[string]bool{
		"inventory": true, "software-management": true, "a": true, "7zip": true, strings.Repeat("a", 63): true,
		"": false, "-inventory": false, "Inventory": false, "inv_entory": false, "inv entory": false,
		strings.Repeat("a", 64): false, "inventory\n": false, "ïnventory": false,
	} {
		if got := ValidName(s); got != want {
			t.Errorf("ValidName(%q) = %v", s, got)
		}
	}
}

func TestValidDate(t *testing.T) {
	for s, want := range map[string]bool{"2026-01-01": true, "2026-1-01": false, "": false, "2026-01-01\n": false, "٢٠٢٦-01-01": false} {
		if got := ValidDate(s); got != want {
			t.Errorf("ValidDate(%q) = %v", s, got)
		}
	}
}
