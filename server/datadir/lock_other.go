//go:build !unix

package datadir

// Lock does nothing where flock is not available; the server targets Unix.
func (d Dir) Lock() (unlock func(), err error) { return func() {}, nil }
