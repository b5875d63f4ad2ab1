package httptransport

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// hostAllowed reports whether a URL's Hostname and Port (empty for the
// scheme's default) match one of the allowed_hosts patterns.
func hostAllowed(patterns []string, scheme, host, port string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if port == "" {
		port = "80"
		if strings.EqualFold(scheme, "https") {
			port = "443"
		}
	}
	for _, p := range patterns {
		pHost, pPort, ok := splitHostPattern(p)
		if !ok || pPort != "" && pPort != port {
			continue
		}
		pHost = strings.TrimSuffix(strings.ToLower(pHost), ".")
		suffix, wildcard := strings.CutPrefix(pHost, "*.")
		a, aErr := netip.ParseAddr(pHost)
		b, bErr := netip.ParseAddr(host)
		switch {
		case wildcard && strings.HasSuffix(host, "."+suffix),
			aErr == nil && bErr == nil && a.Unmap() == b.Unmap(),
			aErr != nil && !wildcard && host == pHost:
			return true
		}
	}
	return false
}

// splitHostPattern splits an allowed_hosts pattern into its host and its
// port (empty when it has none). A bare IPv6 address has no port; with a
// port it is written in brackets.
func splitHostPattern(p string) (host, port string, ok bool) {
	bracketed := strings.HasPrefix(p, "[")
	if _, err := netip.ParseAddr(p); err == nil {
		return p, "", true
	}
	if bracketed && strings.IndexByte(p, ']') == len(p)-1 {
		_, err := netip.ParseAddr(p[1 : len(p)-1])
		return p[1 : len(p)-1], "", err == nil
	}
	if !strings.Contains(p, ":") {
		return p, "", true
	}
	host, port, err := net.SplitHostPort(p)
	n, nErr := strconv.Atoi(port)
	_, addrErr := netip.ParseAddr(host)
	if err != nil || nErr != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port || bracketed && addrErr != nil {
		return "", "", false
	}
	return host, port, true
}

func validHostPattern(p string) bool {
	host, _, ok := splitHostPattern(p)
	_, addrErr := netip.ParseAddr(host)
	name := strings.TrimPrefix(host, "*.")
	return ok && (addrErr == nil || name != "" && !strings.ContainsAny(name, "/:@ *?#[]"))
}

// refusedRanges are the IANA special-purpose blocks that are not globally
// reachable, and deprecated ones that still route somewhere internal.
var refusedRanges = []struct {
	prefix netip.Prefix
	why    string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "this-network"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared (CGNAT, RFC 6598)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
	{netip.MustParsePrefix("192.88.99.0/24"), "6to4 relay anycast"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"}, // 255.255.255.255 included
	{netip.MustParsePrefix("::/96"), "IPv4-compatible (deprecated)"},
	{netip.MustParsePrefix("::ffff:0:0:0/96"), "IPv4-translated"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "NAT64 local-use"},
	{netip.MustParsePrefix("100::/64"), "discard-only"},
	{netip.MustParsePrefix("2001::/32"), "Teredo"},
	{netip.MustParsePrefix("2001:2::/48"), "benchmarking"},
	{netip.MustParsePrefix("2001:10::/28"), "ORCHID"},
	{netip.MustParsePrefix("2001:20::/28"), "ORCHIDv2"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
	{netip.MustParsePrefix("3fff::/20"), "documentation"},
	{netip.MustParsePrefix("5f00::/16"), "segment routing"},
	{netip.MustParsePrefix("fec0::/10"), "site-local (deprecated)"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

// embeddingPrefixes are the IPv6 blocks whose addresses reach the IPv4
// address at byte at of them.
var embeddingPrefixes = []struct {
	prefix netip.Prefix
	at     int
	name   string
}{
	{netip.MustParsePrefix("64:ff9b::/96"), 12, "NAT64"},              // RFC 6052
	{netip.MustParsePrefix("2002::/16"), 2, "6to4"},                   // RFC 3056
	{netip.MustParsePrefix("::ffff:0:0:0/96"), 12, "IPv4-translated"}, // RFC 2765
	{netip.MustParsePrefix("::/96"), 12, "IPv4-compatible"},           // RFC 4291, deprecated
}

// refusedAddress reports why ip may not be connected to, or "" when it may.
// An IPv6 address that embeds an IPv4 one (NAT64, 6to4, IPv4-compatible,
// IPv4-translated) is judged by the IPv4 address it reaches as well.
func refusedAddress(ip netip.Addr) string {
	ip = ip.Unmap().WithZone("")
	switch {
	case ip.IsUnspecified():
		return "unspecified"
	case ip.IsLoopback():
		return "loopback"
	case ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast(), ip.IsInterfaceLocalMulticast():
		return "link-local"
	case ip.IsPrivate():
		return "private"
	}
	for _, e := range embeddingPrefixes {
		if e.prefix.Contains(ip) {
			b := ip.As16()
			v4 := netip.AddrFrom4([4]byte(b[e.at : e.at+4]))
			if why := refusedAddress(v4); why != "" {
				return why + " (" + v4.String() + " via " + e.name + ")"
			}
			break
		}
	}
	for _, r := range refusedRanges {
		if r.prefix.Contains(ip) {
			return r.why
		}
	}
	if !ip.IsGlobalUnicast() {
		return "not global unicast"
	}
	return ""
}

// newDialer returns the dial function of a Publisher's transport; with
// denyPrivate it checks the address of each connection, after DNS.
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
