package listener

import (
	"net"
	"net/netip"
)

// peerOf is the client address that per-address limits count against: the
// IP address, or for IPv6 its /64 network, which one host or one site
// usually holds whole (counting its single addresses would let it open as
// many connections as it likes).
func peerOf(a net.Addr) netip.Addr {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.UDPAddr:
		ap = a.AddrPort()
	case *net.TCPAddr:
		ap = a.AddrPort()
	default:
		p, err := netip.ParseAddrPort(a.String())
		if err != nil {
			return netip.Addr{}
		}
		ap = p
	}
	ip := ap.Addr().Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.Addr()
	}
	return ip
}
