// Package protocol is the wire contract between tally-agent and tally-server:
// the request and response envelope, the message kinds and their bodies, the
// CBOR encoding and the strict decoding of untrusted input, the framing of
// one request per QUIC stream, and the length-prefixed frames of the TLS over
// TCP fallback.
//
// It does no I/O policy and no storage, and imports nothing from agent/ or
// server/ (a test checks it). Every wire change bumps Revision and adds a
// dated line to the history below; enums are append-only.
package protocol

// ALPN is the TLS application protocol both sides insist on.
const ALPN = "tally/1"

// Major is the protocol's major version. A request with another major
// version is answered with StatusUnsupportedVersion and nothing else is read.
const Major uint16 = 1

// Revision is the minor revision this build speaks. Peers announce theirs in
// every envelope; a server answers a lower revision in kind and refuses
// fields it does not know (decoding is strict), so a new field or kind always
// bumps Revision.
//
// History (one line per revision, dated):
//
//	1  2026-11-25  first revision: Enroll, Inventory (basic inventory and
//	               plug-in list), per-node sequence numbers, verdicts per product.
//	2  2026-11-25  license engine: software inventory in Inventory (full or
//	               delta against an acknowledged generation), PluginData,
//	               TaskRequest, CheckIn, Goodbye, PackageRequest, CatalogRequest.
//	3  2026-11-25  Inventory may leave out an unchanged basic inventory and
//	               send its hash (BasicHash); the answer may ask for it (SendBasic).
//	4  2026-11-25  node-locked and concurrent licenses: Activate, Deactivate,
//	               ActivationStatus, LeaseCheckout, LeaseHeartbeat, LeaseCheckin.
//	5  2026-11-25  Inventory carries the agent's spool backlog.
//	6  2026-12-06  LeaseResponse carries Result (no free seat, no such
//	               product, computer not Active, expired), left out for
//	               older agents.
//	7  2026-12-06  basic inventory names the machine's primary user and its
//	               logged-in users (PrimaryUser, Users; seed 003 devices).
const Revision uint16 = 7
