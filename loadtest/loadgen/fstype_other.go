//go:build !linux

package loadgen

func fsType(string) string { return "unknown" }
