package integration

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"database/sql"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/tallyhq/tally/agent/agenttest"
	"github.com/tallyhq/tally/common/identity"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/datadir"
	"github.com/tallyhq/tally/server/servertest"
)

// udpRecorder relays one client's datagrams to the server and back,
// keeping a copy of what the client sent.
//
// It holds the server's datagrams back until the client has sent a 0-RTT
// packet. quic-go (v0.65, issue 4303) installs the server's transport
// parameters on the client without a lock while a stream opened in 0-RTT
// reads them: once the client's run loop has sent the stream's data, its
// later handling of the server's answer is ordered after the OpenStream,
// and the race detector has nothing to report about this test's client.
type udpRecorder struct {
	front  *net.UDPConn
	server *net.UDPAddr
	mu     sync.Mutex
	sent   [][]byte
	held   [][]byte
	early  bool // a 0-RTT packet has gone by
	client *net.UDPAddr
}

// has0RTT reports whether a datagram holds a QUIC version 1 0-RTT packet,
// walking the long-header packets coalesced in it.
func has0RTT(d []byte) bool {
	for len(d) > 7 && d[0]&0x80 != 0 {
		typ := d[0] >> 4 & 3
		i := 5
		for k := 0; k < 2; k++ { // destination, then source connection ID
			if i >= len(d) {
				return false
			}
			i += 1 + int(d[i])
		}
		if typ == 0 { // Initial: a token first
			n, w := quicVarint(d[i:])
			if w == 0 {
				return false
			}
			i += w + int(n)
		}
		if typ == 1 {
			return true
		}
		n, w := quicVarint(d[min(i, len(d)):])
		if w == 0 || i+w+int(n) > len(d) {
			return false
		}
		d = d[i+w+int(n):]
	}
	return false
}

// quicVarint decodes a QUIC variable-length integer, with its width (0 when
// the bytes are too few).
func quicVarint(b []byte) (uint64, int) {
	if len(b) == 0 {
		return 0, 0
	}
	w := 1 << (b[0] >> 6)
	if len(b) < w {
		return 0, 0
	}
	v := uint64(b[0] & 0x3f)
	for _, c := range b[1:w] {
		v = v<<8 | uint64(c)
	}
	return v, w
}

func newRecorder(t *testing.T, server string) *udpRecorder {
	sa, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		t.Fatal(err)
	}
	front, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	r := &udpRecorder{front: front, server: sa}
	back, err := net.DialUDP("udp", nil, sa)
	if err != nil {
		t.Fatal(err)
	}
	go func() { // client → server
		buf := make([]byte, 65536)
		for {
			n, from, err := front.ReadFromUDP(buf)
			if err != nil {
				return
			}
			d := append([]byte(nil), buf[:n]...)
			back.Write(d)
			r.mu.Lock()
			r.client = from
			r.sent = append(r.sent, d)
			var release [][]byte
			if !r.early && has0RTT(d) {
				r.early = true
				release, r.held = r.held, nil
			}
			r.mu.Unlock()
			for _, h := range release {
				front.WriteToUDP(h, from)
			}
		}
	}()
	go func() { // server → client
		buf := make([]byte, 65536)
		for {
			n, err := back.Read(buf)
			if err != nil {
				return
			}
			r.mu.Lock()
			c, early := r.client, r.early
			if !early {
				r.held = append(r.held, append([]byte(nil), buf[:n]...))
			}
			r.mu.Unlock()
			if early && c != nil {
				front.WriteToUDP(buf[:n], c)
			}
		}
	}()
	t.Cleanup(func() { front.Close(); back.Close() })
	return r
}

func (r *udpRecorder) addr() string { return r.front.LocalAddr().String() }

// A request sent in 0-RTT data on a resumed connection is served at once;
// an attacker who replays the client's datagrams to the server gets the
// request answered again, but it is applied once: the repeat is answered
// from the record of the first (its sequence number), and nothing changes.
func TestZeroRTTReplayIsAppliedOnce(t *testing.T) {
	srv := servertest.New(t)
	a := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	key, _, err := a.Dir.Key()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := identity.SelfSigned(key, "replay-test")
	if err != nil {
		t.Fatal(err)
	}
	tlsConf := identity.ClientTLS(cert, srv.Fingerprint(), protocol.ALPN)
	tlsConf.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	qconf := &quic.Config{}
	basic, _ := a.CollectBasic(context.Background())
	post := func(conn *quic.Conn, seq uint64) protocol.Response {
		t.Helper()
		st, err := conn.OpenStream()
		if err != nil {
			t.Fatal(err)
		}
		st.Write(agenttest.Envelope(t, protocol.KindInventory, seq, &protocol.InventoryRequest{Basic: basic}))
		st.Close()
		raw, err := protocol.ReadMessage(st, protocol.MaxResponseSize)
		if err != nil {
			t.Fatal(err)
		}
		var resp protocol.Response
		if err := protocol.Unmarshal(raw, &resp); err != nil || resp.Status != protocol.StatusOK {
			t.Fatalf("answer %+v %v", resp, err)
		}
		return resp
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// A first, full handshake leaves a session ticket behind.
	first, err := quic.DialAddr(ctx, srv.Addr(), tlsConf, qconf)
	if err != nil {
		t.Fatal(err)
	}
	post(first, a.NextSeq(t))
	time.Sleep(200 * time.Millisecond) // the ticket follows the handshake
	first.CloseWithError(0, "")

	// The resumed connection sends its request in 0-RTT data, through a
	// relay that records the client's datagrams.
	rec := newRecorder(t, srv.Addr())
	seq := a.NextSeq(t)
	early, err := quic.DialAddrEarly(ctx, rec.addr(), tlsConf, qconf)
	if err != nil {
		t.Fatal(err)
	}
	resp := post(early, seq)
	if !early.ConnectionState().Used0RTT {
		t.Fatal("the resumed connection did not use 0-RTT")
	}
	if resp.Repeat {
		t.Fatal("the first 0-RTT request was answered as a repeat")
	}
	early.CloseWithError(0, "")
	rec.mu.Lock()
	flight := rec.sent
	rec.mu.Unlock()

	// quic-go keeps a closed connection's IDs for a while and drops what
	// arrives for them; the attacker waits that out.
	time.Sleep(4 * time.Second)
	before := scrapeMetrics(t, srv)[`tally_requests_total{kind="inventory",status="ok"}`]
	// The attacker replays the client's datagrams from another address.
	attacker, err := net.DialUDP("udp", nil, rec.server)
	if err != nil {
		t.Fatal(err)
	}
	defer attacker.Close()
	for _, d := range flight {
		attacker.Write(d)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		after := scrapeMetrics(t, srv)[`tally_requests_total{kind="inventory",status="ok"}`]
		if after > before {
			break // the server decrypted the replayed 0-RTT request and answered it
		}
		if time.Now().After(deadline) {
			t.Fatal("the replayed 0-RTT request never reached the handler: the test proves nothing")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Applied once: one record of the sequence number.
	srv.Stop()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(srv.Config.DataDir, datadir.DatabaseFile)+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM applied WHERE node_id = ? AND seq = ?`, identity.NodeID(key.Public().(ed25519.PublicKey)), int64(seq)).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("the 0-RTT request is recorded %d times", n)
	}
}
