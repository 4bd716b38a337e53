package source

import (
	"context"
	"errors"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The test claims public-looking addresses as this machine's and as
// denied networks. loopbackOnly (in newHostileEnv) makes sure nothing is
// ever sent to them, whatever the guard does.
var (
	ownAddrs = []netip.Addr{
		netip.MustParseAddr("127.0.0.1"), // as a real machine has
		netip.MustParseAddr("8.8.8.8"),
		netip.MustParseAddr("2001:4860:4860::8888"),
		netip.MustParseAddr("fe80::1%eth0"),
	}
	denyCIDRs = []netip.Prefix{
		netip.MustParsePrefix("9.9.9.0/24"),
		netip.MustParsePrefix("2620:fe::/48"),
		netip.MustParsePrefix("::ffff:1.1.1.0/120"), // an IPv4 network, written mapped
	}
)

func machineEnv(t *testing.T) (*hostileEnv, *Opener) {
	t.Helper()
	e, f := newHostileEnv(t, func(o *Options) {
		o.LocalAddrs = func() ([]netip.Addr, error) { return ownAddrs, nil }
		o.DenyCIDRs = denyCIDRs
	})
	for name, addrs := range map[string][]string{
		"self.test":         {"8.8.8.8"},
		"self6.test":        {"2001:4860:4860::8888"},
		"selfmapped.test":   {"::ffff:8.8.8.8"},
		"denied.test":       {"9.9.9.9"},
		"denied6.test":      {"2620:fe::fe"},
		"deniedmapped.test": {"1.1.1.1"},
		"pub.test":          {"93.184.216.34"},
	} {
		e.dns.set(name, addrs...)
	}
	return e, f
}

// machineCases are URLs that reach this machine's own public address or a
// denied network, and the reason the refusal gives.
func machineCases() []hostileCase {
	pub := "http://public.test"
	to := func(target string) string { return pub + "/to?u=" + url.QueryEscape(target) }
	const (
		self   = "the host is an address of this machine"
		denied = "the host is a denied network (--deny-cidrs)"
	)
	refused := func(name, u, reason string, hide ...string) hostileCase {
		return hostileCase{name: name, url: u, want: ErrRefused, reason: reason, hide: hide}
	}
	return []hostileCase{
		refused("own IPv4 literal", "http://8.8.8.8/", self),
		refused("own IPv4 literal with a port", "http://8.8.8.8:8080/", self),
		refused("own IPv4, decimal", "http://134744072/", self, "8.8.8.8"),
		refused("own IPv4, mapped", "http://[::ffff:8.8.8.8]/", self+" (IPv4-mapped)", "8.8.8.8"),
		refused("own IPv4, mapped in hex", "http://[::ffff:808:808]/", self+" (IPv4-mapped)", "8.8.8.8"),
		refused("own IPv6 literal", "http://[2001:4860:4860::8888]/", self),
		refused("own IPv6, written out", "http://[2001:4860:4860:0:0:0:0:8888]/", self, "2001:4860"),
		refused("name resolving to own IPv4", "http://self.test/", "the host resolves to an address of this machine", "8.8.8.8"),
		refused("name resolving to own IPv6", "http://self6.test/", "the host resolves to an address of this machine", "2001:4860"),
		refused("name resolving to own IPv4, mapped", "http://selfmapped.test/", "the host resolves to an address of this machine", "8.8.8.8", "::ffff"),
		refused("302 to own IPv4", to("http://8.8.8.8/"), "a redirect's host is an address of this machine", "8.8.8.8"),
		refused("302 to a name resolving to own IPv4", to("http://self.test/"), "a redirect's host resolves to an address of this machine", "8.8.8.8"),

		refused("denied IPv4 literal", "http://9.9.9.9/", denied),
		refused("denied IPv4, mapped", "http://[::ffff:9.9.9.9]/", denied+" (IPv4-mapped)", "9.9.9.9"),
		refused("denied IPv4, legacy notation", "http://9.9.2313/", denied, "9.9.9.9"),
		refused("denied IPv6 literal", "http://[2620:fe::fe]/", denied),
		refused("denied by a mapped prefix", "http://1.1.1.1/", denied),
		refused("name resolving into a denied network", "http://denied.test/", "the host resolves to a denied network (--deny-cidrs)", "9.9.9.9"),
		refused("name resolving into a denied IPv6 network", "http://denied6.test/", "the host resolves to a denied network", "2620:fe"),
		refused("name resolving into a mapped denied prefix", "http://deniedmapped.test/", "the host resolves to a denied network", "1.1.1.1"),
		refused("302 to a denied network", to("http://9.9.9.9/"), "a redirect's host is a denied network", "9.9.9.9"),
		refused("302 to a name resolving into a denied network", to("http://denied.test/"), "a redirect's host resolves to a denied network", "9.9.9.9"),
	}
}

// TestMachineAndDeniedAddresses: the machine's own addresses and the
// operator's denied networks are refused as private ones are, however
// they are reached, and without saying which address it was.
func TestMachineAndDeniedAddresses(t *testing.T) {
	_, f := machineEnv(t)
	for _, tt := range machineCases() {
		t.Run(tt.name, func(t *testing.T) {
			src, err := f.Open(context.Background(), tt.url)
			if src != nil {
				src.Body.Close()
			}
			requireRefusal(t, tt, err)
		})
	}
	// The public stand-in's own fetches pass: the guard is not refusing
	// everything.
	src, err := f.Open(context.Background(), "http://public.test/missing")
	if !errors.Is(err, ErrStatus) {
		t.Errorf("a public fetch: %v, want a 404", err)
	}
	if src != nil {
		src.Body.Close()
	}
}

// requireRefusal checks a refusal: the error, the reason, and that it
// names neither the addresses the case hides nor an IP literal host.
func requireRefusal(t *testing.T, tt hostileCase, err error) {
	t.Helper()
	if !errors.Is(err, tt.want) {
		t.Fatalf("got %v, want %v", err, tt.want)
	}
	msg := err.Error()
	if !strings.Contains(msg, tt.reason) {
		t.Errorf("message %q does not say %q", msg, tt.reason)
	}
	hide := tt.hide
	if u, perr := url.Parse(tt.url); perr == nil {
		if a, aerr := netip.ParseAddr(u.Hostname()); aerr == nil {
			hide = append(hide, a.WithZone("").String())
		}
	}
	for _, h := range hide {
		if strings.Contains(msg, h) {
			t.Errorf("message %q names the address %s", msg, h)
		}
	}
}

// TestCheckPublic: CheckPublic refuses what a fetch would refuse before
// connecting, for the same reasons, without connecting anywhere.
func TestCheckPublic(t *testing.T) {
	e, f := machineEnv(t)
	var cases []hostileCase
	for _, tt := range append(hostileCases(e.private.port), machineCases()...) {
		if strings.HasPrefix(tt.url, "http://public.test") || tt.before != nil {
			// Redirects are the provider's to follow, and a rebinding
			// name is public when checked: neither is CheckPublic's.
			continue
		}
		cases = append(cases, tt)
	}
	if len(cases) < 70 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			before := e.private.conns.Load()
			u, err := ParseURL(tt.url)
			if err == nil {
				err = f.CheckPublic(context.Background(), u)
			}
			requireRefusal(t, tt, err)
			if n := e.private.conns.Load() - before; n != 0 {
				t.Errorf("the private server accepted %d connections", n)
			}
		})
	}

	for _, raw := range []string{"http://pub.test/a.pdf", "https://93.184.216.34/", "http://[2606:4700:4700::1111]/"} {
		u, _ := ParseURL(raw)
		if err := f.CheckPublic(context.Background(), u); err != nil {
			t.Errorf("%s: %v", raw, err)
		}
	}
	for raw, want := range map[string]error{
		"http://nosuch.test/":              ErrUnreachable,
		"ftp://pub.test/":                  ErrScheme,
		"file:///etc/passwd":               ErrScheme,
		"http://user:pass@pub.test/":       ErrScheme,
		"http://93.184.216.034/":           ErrScheme, // legacy notation
		"http://pub.test:8080/?sig=secret": nil,
	} {
		u, err := ParseURL(raw)
		if err == nil {
			err = f.CheckPublic(context.Background(), u)
		}
		if !errors.Is(err, want) || (want == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", raw, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "user:pass") {
			t.Errorf("%s: the error repeats the credentials: %v", raw, err)
		}
	}

	open := newOpener(t, Options{AllowPrivate: true})
	u, _ := ParseURL("http://127.0.0.1:1/")
	if err := open.CheckPublic(context.Background(), u); err != nil {
		t.Errorf("with AllowPrivate: %v", err)
	}
}

// TestLocalAddrsRefresh: the machine's addresses are listed again once
// the last list is 30 seconds old, not on every check; when they cannot be
// listed the last list stands, and with none the guard refuses.
func TestLocalAddrsRefresh(t *testing.T) {
	a := netip.MustParseAddr("8.8.8.8")
	b := netip.MustParseAddr("8.8.4.4")
	type answer struct {
		addrs []netip.Addr
		err   error
	}
	steps := []struct {
		after  time.Duration // since the start
		answer answer        // what listing gives from now on
		refuse []netip.Addr
		pass   []netip.Addr
		calls  int // listings so far
	}{
		// Never listed: every check refuses, and tries again.
		{0, answer{err: errors.New("netlink: permission denied")}, []netip.Addr{a, b}, nil, 2},
		{time.Second, answer{addrs: []netip.Addr{a}}, []netip.Addr{a}, []netip.Addr{b}, 3},
		// Within 30 seconds the list stands, whatever listing would say.
		{10 * time.Second, answer{addrs: []netip.Addr{b}}, []netip.Addr{a}, []netip.Addr{b}, 3},
		{45 * time.Second, answer{addrs: []netip.Addr{b}}, []netip.Addr{b}, []netip.Addr{a}, 4},
		// A failed listing keeps the last list, for another 30 seconds.
		{80 * time.Second, answer{err: errors.New("gone")}, []netip.Addr{b}, []netip.Addr{a}, 5},
		{90 * time.Second, answer{addrs: []netip.Addr{a}}, []netip.Addr{b}, []netip.Addr{a}, 5},
		{111 * time.Second, answer{addrs: []netip.Addr{a}}, []netip.Addr{a}, []netip.Addr{b}, 6},
	}
	var current answer
	calls := 0
	g := newGuard(Options{LocalAddrs: func() ([]netip.Addr, error) { calls++; return current.addrs, current.err }})
	start := time.Now()
	now := start
	g.now = func() time.Time { return now }
	for i, s := range steps {
		now, current = start.Add(s.after), s.answer
		for _, r := range s.refuse {
			if why := g.refuses(r); why != reasonLocal {
				t.Errorf("step %d: %s: %q, want %q", i, r, why, reasonLocal)
			}
		}
		for _, p := range s.pass {
			if why := g.refuses(p); why != "" {
				t.Errorf("step %d: %s refused: %s", i, p, why)
			}
		}
		if calls != s.calls {
			t.Errorf("step %d: listed %d times, want %d", i, calls, s.calls)
		}
	}
}

// TestInterfaceAddrs: by default the guard knows the machine's loopback
// address from its interfaces.
func TestInterfaceAddrs(t *testing.T) {
	addrs, err := interfaceAddrs()
	if err != nil {
		t.Skipf("no interfaces: %v", err)
	}
	for _, a := range addrs {
		if a.IsLoopback() {
			return
		}
	}
	t.Errorf("no loopback address among %v", addrs)
}
