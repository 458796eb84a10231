package loadgen

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/quic-go/quic-go"
)

// dialer connects simulated agents to one server address. Each agent has
// its own certificate and so its own QUIC connection, but connections
// share a few UDP sockets (quic.Transport demultiplexes by connection ID):
// 10,000 agents need 10,000 connections, not 10,000 sockets.
type dialer struct {
	addr *net.UDPAddr
	trs  []*quic.Transport
	qcfg *quic.Config
}

// clientQUICConfig mirrors the real agent's (agent/client): the same
// timeouts and keep-alives, so that the server sees the same traffic.
func clientQUICConfig(handshake time.Duration) *quic.Config {
	return &quic.Config{
		HandshakeIdleTimeout: handshake,
		MaxIdleTimeout:       90 * time.Second,
		KeepAlivePeriod:      25 * time.Second,
		MaxIncomingStreams:   -1,
	}
}

func newDialer(addr string, sockets int, handshake time.Duration) (*dialer, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("server address %q: %w", addr, err)
	}
	if sockets <= 0 {
		sockets = 1
	}
	network := "udp4"
	if ua.IP.To4() == nil {
		network = "udp6"
	}
	d := &dialer{addr: ua, qcfg: clientQUICConfig(handshake)}
	for range sockets {
		pc, err := net.ListenUDP(network, nil)
		if err != nil {
			d.close()
			return nil, fmt.Errorf("open a UDP socket: %w", err)
		}
		d.trs = append(d.trs, &quic.Transport{Conn: pc})
	}
	return d, nil
}

// dial connects agent i over its socket; early selects DialEarly (0-RTT
// when the session cache holds a ticket that allows it).
func (d *dialer) dial(ctx context.Context, i int, tc *tls.Config, early bool) (*quic.Conn, error) {
	tr := d.trs[i%len(d.trs)]
	if early {
		return tr.DialEarly(ctx, d.addr, tc, d.qcfg)
	}
	return tr.Dial(ctx, d.addr, tc, d.qcfg)
}

func (d *dialer) close() {
	for _, tr := range d.trs {
		tr.Close()
		tr.Conn.Close()
	}
}
