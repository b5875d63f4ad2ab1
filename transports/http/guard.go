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
// scheme's default) match one of the allowed_hosts patterns. "*.domain"
// matches subdomains only; names compare case-insensitively, without a
// trailing dot.
func hostAllowed(patterns []string, scheme, host, port string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if port == "" {
		port = defaultPort(scheme)
	}
	for _, p := range patterns {
		pHost, pPort, ok := splitHostPattern(p)
		if !ok || pPort != "" && pPort != port {
			continue
		}
		pHost = strings.TrimSuffix(strings.ToLower(pHost), ".")
		if suffix, ok := strings.CutPrefix(pHost, "*."); ok {
			if strings.HasSuffix(host, "."+suffix) {
				return true
			}
			continue
		}
		if a, err := netip.ParseAddr(pHost); err == nil {
			if b, err := netip.ParseAddr(host); err == nil && a.Unmap() == b.Unmap() {
				return true
			}
			continue
		}
		if host == pHost {
			return true
		}
	}
	return false
}

func defaultPort(scheme string) string {
	if strings.EqualFold(scheme, "https") {
		return "443"
	}
	return "80"
}

// splitHostPattern splits an allowed_hosts pattern into its host and its
// port (empty when it has none). A bare IPv6 address has no port; with a
// port it is written in brackets.
func splitHostPattern(p string) (host, port string, ok bool) {
	if _, err := netip.ParseAddr(p); err == nil {
		return p, "", true
	}
	if strings.HasPrefix(p, "[") {
		if end := strings.IndexByte(p, ']'); end == len(p)-1 {
			p = p[1:end]
			_, err := netip.ParseAddr(p)
			return p, "", err == nil
		}
	}
	if !strings.Contains(p, ":") {
		return p, "", true
	}
	host, port, err := net.SplitHostPort(p)
	if err != nil {
		return "", "", false
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
		return "", "", false
	}
	if strings.HasPrefix(p, "[") {
		if _, err := netip.ParseAddr(host); err != nil {
			return "", "", false
		}
	}
	return host, port, true
}

func validHostPattern(p string) bool {
	host, _, ok := splitHostPattern(p)
	if !ok {
		return false
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	name := strings.TrimPrefix(host, "*.")
	return name != "" && !strings.ContainsAny(name, "/:@ *?#[]")
}

// refusedRanges are the address blocks deny_private_addresses refuses
// besides loopback, link-local, private and unspecified ones: every block
// of the IANA special-purpose registries that is not globally reachable,
// and the deprecated ones that still route somewhere internal.
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

// IPv6 blocks whose addresses embed an IPv4 address that they reach.
var (
	nat64Prefix  = netip.MustParsePrefix("64:ff9b::/96")    // RFC 6052: the last 32 bits
	sixToFour    = netip.MustParsePrefix("2002::/16")       // RFC 3056: bits 16–47
	v4Compatible = netip.MustParsePrefix("::/96")           // RFC 4291, deprecated: the last 32 bits
	v4Translated = netip.MustParsePrefix("::ffff:0:0:0/96") // RFC 2765: the last 32 bits
)

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
	if v4, via, ok := embeddedIPv4(ip); ok {
		if why := refusedAddress(v4); why != "" {
			return why + " (" + v4.String() + " via " + via + ")"
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

// embeddedIPv4 returns the IPv4 address an IPv6 address reaches through a
// translation or tunnelling scheme, and the scheme's name.
func embeddedIPv4(ip netip.Addr) (netip.Addr, string, bool) {
	if !ip.Is6() {
		return netip.Addr{}, "", false
	}
	b := ip.As16()
	switch {
	case nat64Prefix.Contains(ip):
		return netip.AddrFrom4([4]byte(b[12:16])), "NAT64", true
	case sixToFour.Contains(ip):
		return netip.AddrFrom4([4]byte(b[2:6])), "6to4", true
	case v4Translated.Contains(ip):
		return netip.AddrFrom4([4]byte(b[12:16])), "IPv4-translated", true
	case v4Compatible.Contains(ip):
		return netip.AddrFrom4([4]byte(b[12:16])), "IPv4-compatible", true
	}
	return netip.Addr{}, "", false
}

// newDialer returns the dial function of a Publisher's transport. With
// denyPrivate it checks the address of each connection after DNS, so a name
// that resolves (or is rebound) to an internal address is refused too.
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
