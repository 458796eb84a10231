//go:build race

package loadgen

// RaceDetector is true when this binary was built with -race: every
// handshake and request then costs several times more, and figures mean
// nothing (tests lower their agent counts).
const RaceDetector = true
