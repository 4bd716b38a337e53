package redact

import (
	"net/netip"
	"strings"
)

// AddrWord stands in for an address Addrs removes.
const AddrWord = "[address]"

// maxAddrText is the longest text of an IP address without zone:
// ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255. No longer run of address
// characters need be tried, which keeps Addrs linear in its input.
const maxAddrText = 45

// maxZone bounds an IPv6 zone (an interface name or index): netip accepts
// any text after %, which would swallow the rest of a message.
const maxZone = 32

// Addrs replaces every IPv4 and IPv6 address in s, with its zone, port
// and brackets when it has them ("10.0.0.5:43210", "[fe80::1%eth0]:80",
// "::ffff:10.0.0.5"), by AddrWord. Error texts name the server's own
// addresses and ports (net.OpError prints both ends of a connection), and
// those map the server's network for whoever reads the message.
//
// It matches leftmost-longest and needs no word boundary: "a10.0.0.1" and
// "x::1" lose their address too. Only a bare "::", too common outside
// addresses, is kept unless bracketed.
func Addrs(s string) string {
	var b strings.Builder
	last := 0 // s[last:i] is not yet copied
	for i := 0; i < len(s); {
		n := addrAt(s, i)
		if n == 0 {
			i++
			continue
		}
		if b.Len() == 0 {
			b.Grow(len(s))
		}
		b.WriteString(s[last:i])
		b.WriteString(AddrWord)
		i += n
		last = i
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// addrAt is the length of the address text starting at s[i], or 0.
func addrAt(s string, i int) int {
	c := s[i]
	if c == '[' {
		return bracketedAt(s, i)
	}
	if !isAddrByte(c) || c == '.' {
		return 0
	}
	// The run of address characters from i, cut where no address could
	// go on: a group (between separators) of five characters, a ninth
	// colon or a fourth dot. Each end it could have is noted, so that
	// only ends that make an address possible are parsed.
	var ok [maxAddrText + 1]bool
	colons, dots, group, double := 0, 0, 0, false
	run := i
	for run < len(s) && run-i < maxAddrText && isAddrByte(s[run]) {
		switch s[run] {
		case ':':
			if run > i && s[run-1] == ':' {
				double = true
			}
			colons, group = colons+1, 0
		case '.':
			dots, group = dots+1, 0
		default:
			group++
		}
		if group > 4 || colons > 8 || dots > 3 {
			break
		}
		run++
		last := s[run-1]
		switch {
		case colons == 0:
			ok[run-i] = dots == 3 && last != '.'
		case last == '.':
		case double || colons >= 6:
			ok[run-i] = true
		}
	}
	for end := run; end > i; end-- {
		if !ok[end-i] {
			continue
		}
		text := s[i:end]
		if text == "::" {
			continue
		}
		a, err := netip.ParseAddr(text)
		if err != nil {
			continue
		}
		if a.Is6() {
			if z := zoneAt(s, end); z > 0 {
				if _, err := netip.ParseAddr(s[i : end+z]); err == nil {
					end += z
				}
			}
		}
		if a.Is4() {
			end += portAt(s, end)
		}
		return end - i
	}
	return 0
}

// bracketedAt is the length of "[ipv6%zone]:port" at s[i], port optional.
func bracketedAt(s string, i int) int {
	end := i + 1
	for end < len(s) && end-i <= maxAddrText && isAddrByte(s[end]) {
		end++
	}
	end += zoneAt(s, end)
	if end >= len(s) || s[end] != ']' {
		return 0
	}
	a, err := netip.ParseAddr(s[i+1 : end])
	if err != nil || !a.Is6() {
		return 0
	}
	end++
	return end + portAt(s, end) - i
}

// zoneAt is the length of "%zone" at s[i], or 0: letters, digits, _ and -,
// and dots between them (eth0.100), as interface names and indexes have.
func zoneAt(s string, i int) int {
	if i >= len(s) || s[i] != '%' {
		return 0
	}
	n := 1
	for i+n < len(s) && n <= maxZone {
		c := s[i+n]
		if c == '.' && i+n+1 < len(s) && isZoneByte(s[i+n+1]) && n > 1 {
			n++
			continue
		}
		if !isZoneByte(c) {
			break
		}
		n++
	}
	if n == 1 {
		return 0
	}
	return n
}

// portAt is the length of ":port" at s[i], or 0.
func portAt(s string, i int) int {
	if i >= len(s) || s[i] != ':' {
		return 0
	}
	n := 1
	for i+n < len(s) && n <= 5 && s[i+n] >= '0' && s[i+n] <= '9' {
		n++
	}
	if n == 1 {
		return 0
	}
	return n
}

func isAddrByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == ':' || c == '.'
}

func isZoneByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '-'
}
