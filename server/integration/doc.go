// Package integration holds Tally's end-to-end tests: a real server
// in-process on 127.0.0.1 port 0 and real agents over real QUIC into a real
// SQLite file, and scripts that run the built binaries. It has no code of
// its own.
package integration
