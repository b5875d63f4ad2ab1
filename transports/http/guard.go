package httptransport

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// hostAllowed reports whether host (a URL's Hostname) matches one of
// patterns: an exact name or address, or "*.domain" for every subdomain of
// domain (not domain itself). Names compare case-insensitively, without a
// trailing dot.
func hostAllowed(patterns []string, host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	for _, p := range patterns {
		p = strings.TrimSuffix(strings.ToLower(p), ".")
		if suffix, ok := strings.CutPrefix(p, "*."); ok {
			if strings.HasSuffix(host, "."+suffix) {
				return true
			}
			continue
		}
		if a, err := netip.ParseAddr(p); err == nil {
			if b, err := netip.ParseAddr(host); err == nil && a.Unmap() == b.Unmap() {
				return true
			}
			continue
		}
		if host == p {
			return true
		}
	}
	return false
}

func validHostPattern(p string) bool {
	if _, err := netip.ParseAddr(p); err == nil {
		return true
	}
	name := strings.TrimPrefix(p, "*.")
	return name != "" && !strings.ContainsAny(name, "/:@ *?#[]")
}

// refusedAddress reports why ip may not be connected to, or "" when it may.
func refusedAddress(ip netip.Addr) string {
	ip = ip.Unmap()
	switch {
	case ip.IsLoopback():
		return "loopback"
	case ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast(), ip.IsInterfaceLocalMulticast():
		return "link-local"
	case ip.IsPrivate():
		return "private"
	case ip.IsUnspecified():
		return "unspecified"
	}
	return ""
}

// newDialer returns the dial function of a Publisher's transport. With
// denyPrivate it checks, in the dialer's Control hook, the address each
// connection is about to be made to — after DNS resolution, so a name that
// resolves (or is rebound) to an internal address is refused too.
func newDialer(denyPrivate bool) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{KeepAlive: 30 * time.Second}
	if denyPrivate {
		d.Control = func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: cannot check %q: %v", ErrAddressRefused, address, err)
			}
			if why := refusedAddress(ap.Addr()); why != "" {
				return fmt.Errorf("%w: %s is a %s address (deny_private_addresses)", ErrAddressRefused, ap.Addr(), why)
			}
			return nil
		}
	}
	return d.DialContext
}
