package source

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"code.dny.dev/ssrf"
)

// MaxURLBytes bounds an http(s) or file:// URL. Browsers and servers cap
// URLs near this too; a longer one is an attack or a mistake, and is
// refused before it is parsed or logged. data: URLs have their own cap.
const MaxURLBytes = 8 << 10

// guard refuses addresses filestage must not reach: it checks hosts whose
// spelling already says where they point before anything is looked up,
// and every address actually dialled, at connect time. Beyond the
// special-purpose ranges it refuses the machine's own addresses (a public
// address on one of its interfaces reaches its own services just as
// loopback does) and the operator's denied networks.
type guard struct {
	g    *ssrf.Guardian
	deny []netip.Prefix
	// local lists the machine's own addresses; now is the clock their
	// refresh goes by.
	local func() ([]netip.Addr, error)
	now   func() time.Time

	mu sync.Mutex
	// own is the last list of the machine's addresses, nil until one was
	// had; ownAt is when it was taken.
	own   map[netip.Addr]bool
	ownAt time.Time
}

// localAddrsEvery is how long a list of the machine's addresses is
// trusted: interfaces come and go (DHCP, VPNs, containers), so it is taken
// again on the first check after this long.
const localAddrsEvery = 30 * time.Second

// Reasons for the refusals the guard adds to the special-purpose ranges.
const (
	reasonLocal  = "an address of this machine"
	reasonDenied = "a denied network (--deny-cidrs)"
)

func newGuard(o Options) *guard {
	g := &guard{g: ssrf.New(ssrf.WithAnyPort()), local: o.LocalAddrs, now: time.Now}
	if g.local == nil {
		g.local = interfaceAddrs
	}
	for _, p := range o.DenyCIDRs {
		if !p.IsValid() {
			continue
		}
		// ::ffff:10.0.0.0/104 denies what 10.0.0.0/8 does: addresses are
		// compared unmapped.
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		g.deny = append(g.deny, p.Masked())
	}
	return g
}

// interfaceAddrs lists the addresses on the machine's interfaces.
func interfaceAddrs() ([]netip.Addr, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	out := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		var ip net.IP
		switch a := a.(type) {
		case *net.IPNet:
			ip = a.IP
		case *net.IPAddr:
			ip = a.IP
		}
		if addr, ok := netip.AddrFromSlice(ip); ok {
			out = append(out, addr)
		}
	}
	return out, nil
}

// isLocal reports whether a is one of the machine's addresses. When they
// cannot be listed, the last list taken stands for another while; with
// none ever taken, every address counts as the machine's own (the guard
// fails closed) and the next check tries again.
func (g *guard) isLocal(a netip.Addr) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if now := g.now(); g.own == nil || now.Sub(g.ownAt) >= localAddrsEvery {
		addrs, err := g.local()
		switch {
		case err == nil:
			own := make(map[netip.Addr]bool, len(addrs))
			for _, o := range addrs {
				own[o.Unmap().WithZone("")] = true
			}
			g.own, g.ownAt = own, now
		case g.own == nil:
			return true
		default:
			g.ownAt = now
		}
	}
	return g.own[a]
}

// refuses says why a may not be reached, or "" when it may: a
// special-purpose range, the machine's own addresses, a denied network.
// An IPv4-mapped address is judged as the IPv4 address it carries.
func (g *guard) refuses(a netip.Addr) string {
	a = a.WithZone("")
	mapped := a.Is4In6()
	u := a.Unmap()
	why := ""
	switch {
	case g.g.SafeAddr(u) != nil:
		return addrReason(a)
	case g.denied(u):
		why = reasonDenied
	case g.isLocal(u):
		why = reasonLocal
	default:
		return ""
	}
	if mapped {
		why += " (IPv4-mapped)"
	}
	return why
}

func (g *guard) denied(a netip.Addr) bool {
	for _, p := range g.deny {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// control is the dialer's Control hook: it sees the address about to be
// connected to, after any DNS lookup, so a name that resolved to a public
// address when someone checked and to a private one now is still refused.
func (g *guard) control(network, address string, c syscall.RawConn) error {
	ap, perr := netip.ParseAddrPort(address)
	if err := g.g.Safe(network, address, c); err != nil {
		why := "not a public address"
		if perr == nil {
			why = addrReason(ap.Addr())
		}
		return refusal{reason: why, resolved: true, cause: err}
	}
	if perr != nil {
		// ssrf has parsed it already: this does not happen.
		return refusal{reason: "not a public address", resolved: true}
	}
	if why := g.refuses(ap.Addr()); why != "" {
		return refusal{reason: why, resolved: true}
	}
	return nil
}

// checkHost refuses a URL whose host is, by its spelling alone, not public:
// an IP literal in a denied range, a legacy IPv4 spelling of one (127.1,
// 2130706433, 0x7f.1, 0177.0.0.1: resolvers built on inet_aton read them
// as addresses, whatever net/url thinks), or a localhost name (RFC 6761:
// always loopback). Doing this before dialling makes the answer the same
// whatever the resolver, and lets it say why.
func (g *guard) checkHost(u *url.URL) error {
	host := strings.ToLower(foldHost(u.Hostname()))
	bare := strings.TrimRight(host, ".") // "localhost.." is still localhost
	if bare == "localhost" || strings.HasSuffix(bare, ".localhost") {
		return refusal{reason: "a loopback address (localhost)"}
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if why := g.refuses(a); why != "" {
			return refusal{reason: why}
		}
		return nil
	}
	if !endsInNumber(bare) {
		return nil
	}
	a, ok := parseLegacyIPv4(bare)
	if !ok {
		return fmt.Errorf("%w: the host %q ends in a number but is not an IPv4 address", ErrScheme, truncate(host, 64))
	}
	if why := g.refuses(a); why != "" {
		return refusal{reason: why}
	}
	if a.String() != bare {
		// Public, but spelt so that resolvers disagree on what it means.
		return fmt.Errorf("%w: the host %q is an IPv4 address in a legacy notation; write it as %s", ErrScheme, truncate(host, 64), a)
	}
	return nil
}

// foldHost maps the characters IDNA (and so net/http, before it dials)
// turns into ASCII digits, letters and dots, for the spellings an attacker
// would use to hide a number or localhost: fullwidth forms (１２７．０．０．１,
// ｌｏｃａｌｈｏｓｔ), ideographic full stops and mathematical digits. It need
// not be complete: whatever a name becomes, the dial-time check sees the
// address it reaches.
func foldHost(h string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 0xFF01 && r <= 0xFF5E: // fullwidth ASCII
			return r - 0xFEE0
		case r == 0x3002 || r == 0xFF61: // ideographic and halfwidth full stops
			return '.'
		case r >= 0x1D7CE && r <= 0x1D7FF: // mathematical digits, five styles
			return '0' + (r-0x1D7CE)%10
		}
		return r
	}, h)
}

// endsInNumber reports whether a host's last label is a number, which the
// WHATWG URL standard (and so every browser) reads as an IPv4 address.
func endsInNumber(host string) bool {
	last := host[strings.LastIndex(host, ".")+1:]
	if last == "" {
		return false
	}
	if strings.Trim(last, "0123456789") == "" {
		return true
	}
	_, ok := parseIPv4Number(last)
	return ok
}

// parseLegacyIPv4 is the WHATWG IPv4 parser (inet_aton's notation): one
// to four dot-separated parts, each decimal, octal with a leading 0 or
// hexadecimal with 0x, the last filling the remaining bytes.
func parseLegacyIPv4(host string) (netip.Addr, bool) {
	parts := strings.Split(host, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var nums []uint64
	for _, p := range parts {
		n, ok := parseIPv4Number(p)
		if !ok {
			return netip.Addr{}, false
		}
		nums = append(nums, n)
	}
	last := nums[len(nums)-1]
	if last >= 1<<(8*(5-len(nums))) {
		return netip.Addr{}, false
	}
	v := uint32(last)
	for i, n := range nums[:len(nums)-1] {
		if n > 255 {
			return netip.Addr{}, false
		}
		v |= uint32(n) << (8 * (3 - i))
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

func parseIPv4Number(s string) (uint64, bool) {
	if s == "" {
		return 0, false
	}
	base := 10
	switch {
	case len(s) >= 2 && (s[:2] == "0x" || s[:2] == "0X"):
		base, s = 16, s[2:]
	case len(s) >= 2 && s[0] == '0':
		base, s = 8, s[1:]
	}
	if s == "" {
		return 0, true // "0x" is zero
	}
	n, err := strconv.ParseUint(s, base, 64)
	return n, err == nil
}

// reasons name the special-purpose ranges a refusal can land in, most
// specific first. A refusal names the range, never the address: the
// address a name resolved to would let a caller map internal names.
var reasons = []struct {
	prefix netip.Prefix
	reason string
}{
	{netip.MustParsePrefix("169.254.169.254/32"), "a cloud metadata address"},
	{netip.MustParsePrefix("fd00:ec2::254/128"), "a cloud metadata address"},
	{netip.MustParsePrefix("0.0.0.0/8"), "an unspecified (this-host) address"},
	{netip.MustParsePrefix("::/128"), "an unspecified (this-host) address"},
	{netip.MustParsePrefix("127.0.0.0/8"), "a loopback address"},
	{netip.MustParsePrefix("::1/128"), "a loopback address"},
	{netip.MustParsePrefix("10.0.0.0/8"), "a private (RFC 1918) address"},
	{netip.MustParsePrefix("172.16.0.0/12"), "a private (RFC 1918) address"},
	{netip.MustParsePrefix("192.168.0.0/16"), "a private (RFC 1918) address"},
	{netip.MustParsePrefix("100.64.0.0/10"), "a shared (carrier-grade NAT) address"},
	{netip.MustParsePrefix("169.254.0.0/16"), "a link-local address"},
	{netip.MustParsePrefix("fe80::/10"), "a link-local address"},
	{netip.MustParsePrefix("fc00::/7"), "a unique local (private IPv6) address"},
	{netip.MustParsePrefix("192.0.2.0/24"), "a documentation address"},
	{netip.MustParsePrefix("198.51.100.0/24"), "a documentation address"},
	{netip.MustParsePrefix("203.0.113.0/24"), "a documentation address"},
	{netip.MustParsePrefix("2001:db8::/32"), "a documentation address"},
	{netip.MustParsePrefix("3fff::/20"), "a documentation address"},
	{netip.MustParsePrefix("198.18.0.0/15"), "a benchmarking address"},
	{netip.MustParsePrefix("255.255.255.255/32"), "the broadcast address"},
	{netip.MustParsePrefix("224.0.0.0/4"), "a multicast address"},
	{netip.MustParsePrefix("ff00::/8"), "a multicast address"},
	{netip.MustParsePrefix("240.0.0.0/4"), "a reserved address"},
	{netip.MustParsePrefix("64:ff9b::/96"), "a NAT64 address"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "a NAT64 address"},
	{netip.MustParsePrefix("2002::/16"), "a 6to4 address"},
	{netip.MustParsePrefix("2001::/32"), "a Teredo address"},
	{netip.MustParsePrefix("2001::/23"), "an IETF protocol assignment address"},
	{netip.MustParsePrefix("192.0.0.0/24"), "an IETF protocol assignment address"},
	{netip.MustParsePrefix("192.88.99.0/24"), "a 6to4 relay address"},
	{netip.MustParsePrefix("::/96"), "an IPv4-compatible IPv6 address"},
}

// addrReason names the kind of address a, for a refusal.
func addrReason(a netip.Addr) string {
	a = a.WithZone("")
	mapped := a.Is4In6()
	a = a.Unmap()
	for _, r := range reasons {
		if r.prefix.Contains(a) {
			if mapped {
				return r.reason + " (IPv4-mapped)"
			}
			return r.reason
		}
	}
	return "a special-purpose address, not a public one"
}

// refusal is ErrRefused with the kind of address refused. It keeps the
// guard's error as its cause for errors.Is but does not print it: the
// cause names the address a host resolved to, which would let a caller
// map internal names.
type refusal struct {
	reason string
	// resolved: the host is a name, and reason is what it resolved to.
	resolved bool
	// redirect: a redirect led there, not the URL the caller gave.
	redirect bool
	cause    error
}

func (r refusal) Error() string {
	what, verb := "the host", "is"
	if r.redirect {
		what = "a redirect's host"
	}
	if r.resolved {
		verb = "resolves to"
	}
	return fmt.Sprintf("refused: %s %s %s; filestage fetches public addresses only", what, verb, r.reason)
}

func (r refusal) Unwrap() []error {
	if r.cause == nil {
		return []error{ErrRefused}
	}
	return []error{ErrRefused, r.cause}
}

// asRefusal finds a refusal in err's chain.
func asRefusal(err error) (refusal, bool) {
	var r refusal
	ok := errors.As(err, &r)
	return r, ok
}
