package client

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"syscall"

	"github.com/quic-go/quic-go"

	"github.com/tallyhq/tally/protocol"
)

// quicLink carries each request on its own stream of one QUIC connection,
// on a UDP socket of its own.
type quicLink struct {
	conn   *quic.Conn
	tr     *quic.Transport
	server string
}

// dialQUIC connects over QUIC. heard, when not nil, is set as soon as any
// datagram comes back: a server that answers at all, however slowly, is
// reachable over UDP, and falling back to TCP would not help.
func (c *Client) dialQUIC(ctx context.Context, server string, heard *atomic.Bool) (link, error) {
	addr, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		return nil, err
	}
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4zero})
	if err != nil {
		return nil, err
	}
	if heard == nil {
		heard = new(atomic.Bool)
	}
	tr := &quic.Transport{Conn: &watchedUDP{PacketConn: udp, udp: udp, heard: heard}}
	// DialEarly: on a resumed session the request goes out in the first
	// flight (0-RTT), saving a round trip; the server applies each request
	// once by its sequence number, so a replayed 0-RTT request does nothing.
	// Without a session, nothing is sent before the pinned handshake ends.
	conn, err := tr.DialEarly(ctx, addr, c.tls, c.qcfg)
	if err != nil {
		tr.Close()
		udp.Close()
		return nil, err
	}
	if raceDetector {
		// quic-go (v0.65, its issue 4303) installs the server's transport
		// parameters without a lock while a stream opened in 0-RTT reads
		// them: harmless in a normal build, a report under the race
		// detector. Test builds wait for the handshake instead.
		select {
		case <-conn.HandshakeComplete():
		case <-ctx.Done():
			conn.CloseWithError(0, "")
			tr.Close()
			udp.Close()
			return nil, ctx.Err()
		case <-conn.Context().Done():
			tr.Close()
			udp.Close()
			return nil, context.Cause(conn.Context())
		}
	}
	return &quicLink{conn: conn, tr: tr, server: server}, nil
}

// watchedUDP is the dial's UDP socket, noting whether anything came back.
// It offers quic-go the socket's buffer and syscall methods but not its
// batch ones (ReadMsgUDP), so that every datagram is read through
// ReadFrom; the optimisations lost do not matter to an agent's few small
// requests.
type watchedUDP struct {
	net.PacketConn
	udp   *net.UDPConn
	heard *atomic.Bool
}

func (w *watchedUDP) ReadFrom(p []byte) (int, net.Addr, error) {
	n, from, err := w.PacketConn.ReadFrom(p)
	if err == nil {
		w.heard.Store(true)
	}
	return n, from, err
}

func (w *watchedUDP) SetReadBuffer(n int) error             { return w.udp.SetReadBuffer(n) }
func (w *watchedUDP) SetWriteBuffer(n int) error            { return w.udp.SetWriteBuffer(n) }
func (w *watchedUDP) SyscallConn() (syscall.RawConn, error) { return w.udp.SyscallConn() }

func (l *quicLink) transport() string { return TransportQUIC }
func (l *quicLink) alive() bool       { return l.conn.Context().Err() == nil }

func (l *quicLink) close(why string) {
	l.conn.CloseWithError(0, why)
	l.tr.Close()
	l.tr.Conn.Close() // quic-go's Transport does not close a socket it was handed
}

func (l *quicLink) roundTrip(ctx context.Context, req []byte) ([]byte, error) {
	raw, err := l.roundTripOnce(ctx, req)
	if err != nil && errors.Is(err, quic.Err0RTTRejected) {
		// The server refused the 0-RTT data: once the handshake is done,
		// send the same request again (it is applied once in any case).
		next, nerr := l.conn.NextConnection(ctx)
		if nerr != nil {
			return nil, &TransportError{Op: "request to " + l.server, Err: nerr}
		}
		l.conn = next
		return l.roundTripOnce(ctx, req)
	}
	return raw, err
}

func (l *quicLink) roundTripOnce(ctx context.Context, req []byte) ([]byte, error) {
	st, err := l.conn.OpenStreamSync(ctx)
	if err != nil {
		// A rejected 0-RTT leaves the connection to NextConnection (see
		// roundTrip): closing it would lose the handshake just done, as
		// when a replica, or a restarted server, cannot resume the session.
		if !errors.Is(err, quic.Err0RTTRejected) {
			l.close("")
		}
		return nil, &TransportError{Op: "open stream", Err: err}
	}
	raw, err := StreamExchange(ctx, st, req)
	if err != nil {
		return nil, &TransportError{Op: "request to " + l.server, Err: err}
	}
	return raw, nil
}

// StreamExchange sends the request envelope req on st, a stream of its own,
// and reads the answer, within ctx. It is the whole exchange of one request
// over QUIC (the load generator uses it too).
func StreamExchange(ctx context.Context, st *quic.Stream, req []byte) ([]byte, error) {
	if dl, ok := ctx.Deadline(); ok {
		st.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { st.CancelRead(0); st.CancelWrite(0) })
	defer stop()
	_, werr := st.Write(req)
	if werr == nil {
		werr = st.Close()
	}
	// Even if the write failed (the server stopped reading an oversized
	// request), the server may have answered why.
	raw, rerr := protocol.ReadMessage(st, protocol.MaxResponseSize)
	if rerr != nil || len(raw) == 0 {
		st.CancelRead(0)
		if werr != nil {
			rerr = errors.Join(werr, rerr)
		}
		if rerr == nil {
			rerr = errors.New("empty answer")
		}
		return nil, rerr
	}
	return raw, nil
}
