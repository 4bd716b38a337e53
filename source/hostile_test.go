package source

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// countingListener counts accepted connections: a refused fetch must not
// even connect, which counting requests would not show.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// privateServer is what hostile URLs try to reach: an HTTP server on
// 127.0.0.1 and, where the machine has IPv6, on [::1] at the same port.
type privateServer struct {
	port  string
	v6    bool // listening on [::1] too
	conns atomic.Int64
}

func newPrivateServer(t *testing.T) *privateServer {
	t.Helper()
	p := &privateServer{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "internal secret") })
	v4 := httptest.NewUnstartedServer(h)
	v4.Listener = countingListener{v4.Listener, &p.conns}
	v4.Start()
	t.Cleanup(v4.Close)
	_, p.port, _ = net.SplitHostPort(v4.Listener.Addr().String())
	if l, err := net.Listen("tcp6", "[::1]:"+p.port); err == nil {
		v6 := &httptest.Server{Listener: countingListener{l, &p.conns}, Config: &http.Server{Handler: h}}
		v6.Start()
		t.Cleanup(v6.Close)
		p.v6 = true
	} else {
		t.Logf("no [::1] listener (%v); IPv6 loopback cases check only the error", err)
	}
	return p
}

// dnsServer answers A and AAAA queries over UDP on loopback for the names
// it is given, so that tests choose what a name resolves to, and when.
// Each name has a list of answers per type, given one per query in turn,
// the last repeating; names it was not given get NXDOMAIN.
type dnsServer struct {
	addr    string
	mu      sync.Mutex
	answers map[string][]netip.Addr // key: "A name" or "AAAA name"
	asked   map[string]int
}

func newDNSServer(t *testing.T) *dnsServer {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &dnsServer{addr: pc.LocalAddr().String(), answers: map[string][]netip.Addr{}, asked: map[string]int{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return // closed
			}
			if resp := d.answer(buf[:n]); resp != nil {
				pc.WriteTo(resp, from)
			}
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return d
}

// set gives name its A answers (IPv4 addresses, in turn) and AAAA answers.
func (d *dnsServer) set(name string, addrs ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.answers["A "+name] = d.answers["A "+name][:0]
	d.answers["AAAA "+name] = d.answers["AAAA "+name][:0]
	for _, s := range addrs {
		a := netip.MustParseAddr(s)
		typ := "A "
		if a.Is6() {
			typ = "AAAA "
		}
		d.answers[typ+name] = append(d.answers[typ+name], a)
	}
}

func (d *dnsServer) queries(typ, name string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.asked[typ+" "+name]
}

// resolver sends every query to d, whatever server resolv.conf names.
func (d *dnsServer) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dialer net.Dialer
		return dialer.DialContext(ctx, "udp", d.addr)
	}}
}

// answer builds the reply to query q in DNS wire format (RFC 1035 4.1): the
// header with the query's ID, the question echoed, and at most one answer
// record whose name points back at the question's.
func (d *dnsServer) answer(q []byte) []byte {
	if len(q) < 12 {
		return nil
	}
	i := 12
	var labels []string
	for {
		if i >= len(q) {
			return nil
		}
		n := int(q[i])
		i++
		if n == 0 {
			break
		}
		if n > 63 || i+n > len(q) {
			return nil
		}
		labels = append(labels, string(q[i:i+n]))
		i += n
	}
	if i+4 > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[i:])
	question := q[12 : i+4]
	name := strings.ToLower(strings.Join(labels, "."))

	d.mu.Lock()
	_, knownA := d.answers["A "+name]
	_, knownAAAA := d.answers["AAAA "+name]
	var ans []netip.Addr
	switch qtype {
	case 1:
		ans = d.next("A", name)
	case 28:
		ans = d.next("AAAA", name)
	}
	d.mu.Unlock()

	const qr, aa, ra, nxdomain = 0x8000, 0x0400, 0x0080, 3
	flags := uint16(qr|aa|ra) | binary.BigEndian.Uint16(q[2:])&0x0100 // echo RD
	if !knownA && !knownAAAA {
		flags |= nxdomain
	}
	resp := binary.BigEndian.AppendUint16(nil, binary.BigEndian.Uint16(q))
	resp = binary.BigEndian.AppendUint16(resp, flags)
	resp = binary.BigEndian.AppendUint16(resp, 1) // QDCOUNT
	resp = binary.BigEndian.AppendUint16(resp, uint16(len(ans)))
	resp = binary.BigEndian.AppendUint16(resp, 0) // NSCOUNT
	resp = binary.BigEndian.AppendUint16(resp, 0) // ARCOUNT
	resp = append(resp, question...)
	for _, a := range ans {
		rdata := a.AsSlice()
		resp = append(resp, 0xC0, 12) // the name: a pointer to the question's
		resp = binary.BigEndian.AppendUint16(resp, qtype)
		resp = binary.BigEndian.AppendUint16(resp, 1) // class IN
		resp = binary.BigEndian.AppendUint32(resp, 0) // TTL: do not cache
		resp = binary.BigEndian.AppendUint16(resp, uint16(len(rdata)))
		resp = append(resp, rdata...)
	}
	return resp
}

// next is the answer to this query of typ for name; d.mu is held.
func (d *dnsServer) next(typ, name string) []netip.Addr {
	key := typ + " " + name
	list := d.answers[key]
	n := d.asked[key]
	d.asked[key]++
	if len(list) == 0 {
		return nil
	}
	return []netip.Addr{list[min(n, len(list)-1)]}
}

// hostileEnv is a private server, a DNS server the Opener resolves with,
// and a stand-in for a public web server that redirects where it is told.
type hostileEnv struct {
	private *privateServer
	dns     *dnsServer
	// loops counts requests to the public stand-in's endless redirect.
	loops atomic.Int64
}

// publicHost is the name of the public stand-in. Only a dial to exactly
// this host:port skips the guard (as a public address would pass it);
// every other connection, redirect targets included, goes through the
// Opener's own guarded dialer.
const publicHost = "public.test:80"

// newHostileEnv makes the environment and an Opener guarded as in
// production, with opts changing its Options.
func newHostileEnv(t *testing.T, opts ...func(*Options)) (*hostileEnv, *Opener) {
	t.Helper()
	e := &hostileEnv{private: newPrivateServer(t), dns: newDNSServer(t)}
	for name, addrs := range map[string][]string{
		"loopback.test":   {"127.0.0.1"},
		"loopback6.test":  {"::1"},
		"mapped.test":     {"::ffff:127.0.0.1"},
		"private10.test":  {"10.1.2.3"},
		"private192.test": {"192.168.1.20"},
		"cgnat.test":      {"100.100.100.200"}, // a cloud's metadata service
		"metadata.test":   {"169.254.169.254"},
		"ula.test":        {"fd00::2"},
		"nat64.test":      {"64:ff9b::7f00:1"},
		"rebind.test":     {"93.184.216.34", "127.0.0.1"}, // public when checked, then loopback
	} {
		e.dns.set(name, addrs...)
	}
	public := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/to":
			w.Header().Set("Location", r.URL.Query().Get("u"))
			w.WriteHeader(http.StatusFound)
		case "/loop":
			e.loops.Add(1)
			http.Redirect(w, r, "/loop", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(public.Close)

	o := Options{MaxBytes: 1 << 20, Timeout: 10 * time.Second, Resolver: e.dns.resolver()}
	for _, opt := range opts {
		opt(&o)
	}
	f := newOpener(t, o)
	loopbackOnly(t, f)
	tr := f.client.Transport.(*http.Transport)
	guarded := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr == publicHost {
			var d net.Dialer
			return d.DialContext(ctx, network, public.Listener.Addr().String())
		}
		return guarded(ctx, network, addr)
	}
	return e, f
}

// loopbackOnly stops any connection the guard lets through to an address
// off this machine's loopback, and fails the test for it: tests give
// names public-looking addresses, and nothing may ever reach those.
func loopbackOnly(t *testing.T, f *Opener) {
	t.Helper()
	guarded := f.dialer.Control
	f.dialer.Control = func(network, address string, c syscall.RawConn) error {
		if guarded != nil {
			if err := guarded(network, address, c); err != nil {
				return err
			}
		}
		if ap, err := netip.ParseAddrPort(address); err != nil || !ap.Addr().Unmap().IsLoopback() {
			t.Errorf("a connection to %s got past the guard", address)
			return errors.New("test: only loopback addresses may be dialled")
		}
		return nil
	}
}

type hostileCase struct {
	name string
	url  string
	// want is ErrRefused, ErrScheme, or for too many redirects
	// ErrUnreachable (the tools map it to SOURCE_UNREACHABLE).
	want error
	// reason must be in the message.
	reason string
	// hide must not be: the addresses a name resolved to. An IP literal
	// host is hidden too (the message names the kind of address only).
	hide []string
	// before runs first (the rebinding case's check).
	before func(t *testing.T, e *hostileEnv)
	// after checks more once the fetch failed.
	after func(t *testing.T, e *hostileEnv)
}

func hostileCases(port string) []hostileCase {
	p := ":" + port
	pub := "http://public.test"
	to := func(target string) string { return pub + "/to?u=" + url.QueryEscape(target) }
	const (
		loopback = "the host is a loopback address"
		rfc1918  = "the host is a private (RFC 1918) address"
		cgnat    = "the host is a shared (carrier-grade NAT) address"
		meta     = "the host is a cloud metadata address"
		unspec   = "the host is an unspecified (this-host) address"
		ula      = "the host is a unique local (private IPv6) address"
		ll       = "the host is a link-local address"
		nat64    = "the host is a NAT64 address"
		sixto4   = "the host is a 6to4 address"
		teredo   = "the host is a Teredo address"
		mcast    = "the host is a multicast address"
		doc      = "the host is a documentation address"
		bench    = "the host is a benchmarking address"
	)
	refused := func(name, u, reason string, hide ...string) hostileCase {
		return hostileCase{name: name, url: u, want: ErrRefused, reason: reason, hide: hide}
	}
	return []hostileCase{
		// Loopback, in every spelling.
		refused("127.0.0.1", "http://127.0.0.1"+p+"/", loopback),
		refused("127.0.0.1 https", "https://127.0.0.1"+p+"/", loopback),
		refused("127.1", "http://127.1"+p+"/", loopback, "127.0.0.1"),
		refused("decimal 2130706433", "http://2130706433"+p+"/", loopback, "127.0.0.1"),
		refused("hex 0x7f000001", "http://0x7f000001"+p+"/", loopback, "127.0.0.1"),
		refused("octal 0177.0.0.1", "http://0177.0.0.1"+p+"/", loopback, "127.0.0.1"),
		refused("hex 0x7f.1", "http://0x7f.1"+p+"/", loopback, "127.0.0.1"),
		refused("mixed radix 0x7F.0.00.01", "http://0x7F.0.00.01"+p+"/", loopback, "127.0.0.1"),
		refused("trailing dot 127.0.0.1.", "http://127.0.0.1."+p+"/", loopback),
		refused("top of 127/8", "http://127.255.255.254"+p+"/", loopback),
		refused("[::1]", "http://[::1]"+p+"/", loopback),
		refused("[0:0:0:0:0:0:0:1]", "http://[0:0:0:0:0:0:0:1]"+p+"/", loopback, "::1"),
		refused("[::1%lo] with zone", "http://[::1%25lo]"+p+"/", loopback, "::1"),
		refused("[::ffff:127.0.0.1]", "http://[::ffff:127.0.0.1]"+p+"/", "the host is a loopback address (IPv4-mapped)", "127.0.0.1"),
		refused("[::ffff:7f00:1]", "http://[::ffff:7f00:1]"+p+"/", "the host is a loopback address (IPv4-mapped)", "127.0.0.1"),
		refused("v4-mapped written out", "http://[0000:0000:0000:0000:0000:ffff:7f00:0001]"+p+"/", "loopback address (IPv4-mapped)", "127.0.0.1"),
		refused("IPv4-compatible [::127.0.0.1]", "http://[::127.0.0.1]"+p+"/", "the host is an IPv4-compatible IPv6 address", "127.0.0.1"),
		refused("localhost", "http://localhost"+p+"/", "the host is a loopback address (localhost)"),
		refused("localhost.", "http://localhost."+p+"/", "loopback address (localhost)"),
		refused("LOCALHOST", "http://LOCALHOST"+p+"/", "loopback address (localhost)"),
		refused("app.localhost", "http://app.localhost"+p+"/", "loopback address (localhost)"),
		refused("fullwidth digits", "http://１２７．０．０．１"+p+"/", loopback, "127.0.0.1"),
		refused("ideographic full stops", "http://127。0。0。1"+p+"/", loopback, "127.0.0.1"),
		refused("fullwidth localhost", "http://ｌｏｃａｌｈｏｓｔ"+p+"/", "loopback address (localhost)"),
		refused("name resolving to 127.0.0.1", "http://loopback.test"+p+"/", "the host resolves to a loopback address", "127.0.0.1"),
		refused("name resolving to ::1", "http://loopback6.test"+p+"/", "the host resolves to a loopback address", "::1"),
		refused("name resolving to ::ffff:127.0.0.1", "http://mapped.test"+p+"/", "the host resolves to a loopback address", "127.0.0.1", "::ffff"),
		refused("fragment trick 127.0.0.1#@evil", "http://127.0.0.1"+p+"#@evil.test/", loopback),

		// RFC 1918, at the edges of each range.
		refused("10.0.0.1", "http://10.0.0.1/", rfc1918),
		refused("10.255.255.255", "http://10.255.255.255/", rfc1918),
		refused("octal 012.0.0.1", "http://012.0.0.1/", rfc1918, "10.0.0.1"),
		refused("decimal 167772161", "http://167772161/", rfc1918, "10.0.0.1"),
		refused("172.16.0.0", "http://172.16.0.0/", rfc1918),
		refused("172.31.255.255", "http://172.31.255.255/", rfc1918),
		refused("192.168.0.0", "http://192.168.0.0/", rfc1918),
		refused("192.168.255.255", "http://192.168.255.255/", rfc1918),
		refused("name resolving to 10.1.2.3", "http://private10.test/", "the host resolves to a private (RFC 1918) address", "10.1.2.3"),
		refused("name resolving to 192.168.1.20", "http://private192.test/", "resolves to a private (RFC 1918) address", "192.168.1.20"),

		// Carrier-grade NAT, link-local and metadata services.
		refused("100.64.0.0", "http://100.64.0.0/", cgnat),
		refused("100.127.255.255", "http://100.127.255.255/", cgnat),
		refused("name resolving to 100.100.100.200", "http://cgnat.test/latest/meta-data/", "resolves to a shared (carrier-grade NAT) address", "100.100.100.200"),
		refused("169.254.0.1", "http://169.254.0.1/", ll),
		refused("169.254.255.255", "http://169.254.255.255/", ll),
		refused("169.254.169.254", "http://169.254.169.254/latest/meta-data/iam/security-credentials/", meta),
		refused("decimal 2852039166", "http://2852039166/latest/meta-data/", meta, "169.254.169.254"),
		refused("[fd00:ec2::254]", "http://[fd00:ec2::254]/latest/meta-data/", meta),
		refused("name resolving to 169.254.169.254", "http://metadata.test/computeMetadata/v1/", "the host resolves to a cloud metadata address", "169.254.169.254"),

		// This host.
		refused("0.0.0.0", "http://0.0.0.0"+p+"/", unspec),
		refused("0", "http://0"+p+"/", unspec, "0.0.0.0"),
		refused("[::]", "http://[::]"+p+"/", unspec),

		// IPv6 unique local and link-local.
		refused("[fc00::1]", "http://[fc00::1]/", ula),
		refused("[fdff:ffff::1]", "http://[fdff:ffff::1]/", ula),
		refused("name resolving to fd00::2", "http://ula.test/", "the host resolves to a unique local (private IPv6) address", "fd00::2"),
		refused("[fe80::1]", "http://[fe80::1]/", ll),
		refused("[fe80::1%eth0] with zone", "http://[fe80::1%25eth0]/", ll, "fe80::1"),
		refused("[febf:ffff::1] top of fe80::/10", "http://[febf:ffff::1]/", ll),

		// IPv6 that embeds private IPv4.
		refused("NAT64 [64:ff9b::127.0.0.1]", "http://[64:ff9b::127.0.0.1]/", nat64),
		refused("NAT64 [64:ff9b::7f00:1]", "http://[64:ff9b::7f00:1]/", nat64),
		refused("NAT64 [64:ff9b::10.0.0.1]", "http://[64:ff9b::10.0.0.1]/", nat64),
		refused("local-use NAT64 [64:ff9b:1::a00:1]", "http://[64:ff9b:1::a00:1]/", nat64),
		refused("name resolving to NAT64 loopback", "http://nat64.test/", "the host resolves to a NAT64 address", "64:ff9b"),
		refused("6to4 of 127.0.0.1", "http://[2002:7f00:1::1]/", sixto4),
		refused("6to4 of 10.0.0.1", "http://[2002:a00:1::1]/", sixto4),
		refused("6to4 of 192.168.1.1", "http://[2002:c0a8:101::1]/", sixto4),
		refused("6to4 of 169.254.169.254", "http://[2002:a9fe:a9fe::1]/", sixto4),
		refused("Teredo [2001::1]", "http://[2001::1]/", teredo),
		refused("Teredo with a client address", "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", teredo),

		// Multicast, broadcast, benchmarking, documentation, reserved.
		refused("224.0.0.1", "http://224.0.0.1/", mcast),
		refused("239.255.255.250", "http://239.255.255.250/", mcast),
		refused("[ff02::1]", "http://[ff02::1]/", mcast),
		refused("255.255.255.255", "http://255.255.255.255/", "the host is the broadcast address"),
		refused("240.0.0.1", "http://240.0.0.1/", "the host is a reserved address"),
		refused("198.18.0.0", "http://198.18.0.0/", bench),
		refused("198.19.255.255", "http://198.19.255.255/", bench),
		refused("192.0.2.1", "http://192.0.2.1/", doc),
		refused("198.51.100.1", "http://198.51.100.1/", doc),
		refused("203.0.113.1", "http://203.0.113.1/", doc),
		refused("[2001:db8::1]", "http://[2001:db8::1]/", doc),
		refused("[3fff::1]", "http://[3fff::1]/", doc),
		refused("192.0.0.8", "http://192.0.0.8/", "the host is an IETF protocol assignment address"),

		// A public server that redirects somewhere private.
		refused("302 to 127.0.0.1", to("http://127.0.0.1"+p+"/"), "a redirect's host is a loopback address", "127.0.0.1"),
		refused("302 to localhost", to("http://localhost"+p+"/"), "a redirect's host is a loopback address (localhost)"),
		refused("302 to 2130706433", to("http://2130706433"+p+"/"), "a redirect's host is a loopback address", "127.0.0.1"),
		refused("302 to [::1]", to("http://[::1]"+p+"/"), "a redirect's host is a loopback address", "::1"),
		refused("302 to a name resolving to 127.0.0.1", to("http://loopback.test"+p+"/"), "a redirect's host resolves to a loopback address", "127.0.0.1"),
		refused("302 to 169.254.169.254", to("http://169.254.169.254/latest/meta-data/"), "a redirect's host is a cloud metadata address", "169.254.169.254"),
		refused("two 302s to 10.0.0.1", to(to("http://10.0.0.1/")), "a redirect's host is a private (RFC 1918) address", "10.0.0.1"),
		{name: "302 to file://", url: to("file:///etc/passwd"), want: ErrScheme, reason: `scheme "file"`},
		{name: "302 to gopher://", url: to("gopher://127.0.0.1" + p + "/_HELO"), want: ErrScheme, reason: `scheme "gopher"`},
		{name: "too many redirects", url: pub + "/loop", want: ErrUnreachable, reason: "more than 5 redirects",
			after: func(t *testing.T, e *hostileEnv) {
				if n := e.loops.Load(); n != MaxRedirects+1 {
					t.Errorf("the redirect loop was requested %d times, want %d", n, MaxRedirects+1)
				}
			}},

		// Userinfo: refused outright, whichever side of @ the address is.
		{name: "public@127.0.0.1", url: "http://public.example@127.0.0.1" + p + "/", want: ErrScheme, reason: "user name or password"},
		{name: "127.0.0.1@evil", url: "http://127.0.0.1@evil.test/", want: ErrScheme, reason: "user name or password",
			before: func(t *testing.T, _ *hostileEnv) {
				// net/url reads the host as evil.test, not 127.0.0.1: the trick
				// fools people, not the parser; refused for credentials anyway.
				u, err := url.Parse("http://127.0.0.1@evil.test/")
				if err != nil || u.Hostname() != "evil.test" || u.User.Username() != "127.0.0.1" {
					t.Errorf("net/url reads host %q user %q (%v)", u.Hostname(), u.User.Username(), err)
				}
			}},
		{name: "user:pass@localhost", url: "http://user:pass@localhost" + p + "/", want: ErrScheme, reason: "user name or password"},

		// Over-long URLs are refused before they are parsed or fetched.
		{name: "100 KB URL to 127.0.0.1", url: "http://127.0.0.1" + p + "/" + strings.Repeat("a", 100<<10), want: ErrScheme, reason: "longer than the 8192-byte limit"},
		{name: "9 KB query to a public host", url: pub + "/to?u=" + strings.Repeat("b", 9<<10), want: ErrScheme, reason: "longer than the 8192-byte limit"},

		// DNS rebinding: the name is public when checked, loopback when
		// connected to. The guard checks the address dialled.
		{name: "rebinding between check and connect", url: "http://rebind.test" + p + "/", want: ErrRefused,
			reason: "the host resolves to a loopback address", hide: []string{"127.0.0.1", "93.184.216.34"},
			before: func(t *testing.T, e *hostileEnv) {
				addrs, err := e.dns.resolver().LookupNetIP(context.Background(), "ip4", "rebind.test")
				if err != nil || len(addrs) != 1 || addrs[0] != netip.MustParseAddr("93.184.216.34") {
					t.Fatalf("the check resolved rebind.test to %v (%v)", addrs, err)
				}
				if err := newGuard(Options{}).g.SafeAddr(addrs[0]); err != nil {
					t.Fatalf("the check refused the public answer: %v", err)
				}
			},
			after: func(t *testing.T, e *hostileEnv) {
				if n := e.dns.queries("A", "rebind.test"); n < 2 {
					t.Errorf("rebind.test was asked for %d times; the connect did not resolve it again", n)
				}
			}},
	}
}

// TestHostileURLs: with private addresses not allowed, every URL here is
// refused before a connection is made, for a reason the message names
// without naming the address.
func TestHostileURLs(t *testing.T) {
	e, f := newHostileEnv(t)
	cases := hostileCases(e.private.port)
	if len(cases) < 60 {
		t.Fatalf("only %d hostile URLs", len(cases))
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			if tt.before != nil {
				tt.before(t, e)
			}
			before := e.private.conns.Load()
			src, err := f.Open(context.Background(), tt.url)
			if src != nil {
				src.Body.Close()
			}
			requireRefusal(t, tt, err)
			msg := err.Error()
			t.Log(msg)
			if len(msg) > 400 {
				t.Errorf("the message is %d bytes long", len(msg))
			}
			if n := e.private.conns.Load() - before; n != 0 {
				t.Errorf("the private server accepted %d connections", n)
			}
			if tt.after != nil {
				tt.after(t, e)
			}
		})
	}
}

// TestHostileEnvReachesPrivate checks the test itself: with private
// addresses allowed, the private server is reached, and counted, by
// address, by [::1] and by a name the test's DNS answers.
func TestHostileEnvReachesPrivate(t *testing.T) {
	e, _ := newHostileEnv(t)
	f := newOpener(t, Options{AllowPrivate: true, MaxBytes: 1 << 20, Timeout: 10 * time.Second, Resolver: e.dns.resolver()})
	urls := []string{"http://127.0.0.1:" + e.private.port + "/", "http://loopback.test:" + e.private.port + "/"}
	if e.private.v6 {
		urls = append(urls, "http://[::1]:"+e.private.port+"/")
	}
	for _, u := range urls {
		before := e.private.conns.Load()
		src, err := f.Open(context.Background(), u)
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		b, _ := io.ReadAll(src.Body)
		src.Body.Close()
		if string(b) != "internal secret" {
			t.Errorf("%s: got %q", u, b)
		}
		// A connection is counted when accepted; the response proves it was.
		if e.private.conns.Load() == before {
			t.Errorf("%s: no connection was counted", u)
		}
	}
}

// TestCheckHostPublic: hosts just outside the denied ranges, and names,
// pass the spelling check (they are not dialled here). Hosts that end in
// a number but are no IPv4 address, or spell a public one in a legacy
// notation, are malformed.
func TestCheckHostPublic(t *testing.T) {
	g := newGuard(Options{})
	tests := []struct {
		host string
		want error
	}{
		{"9.255.255.255", nil},
		{"11.0.0.0", nil},
		{"172.15.255.255", nil},
		{"172.32.0.0", nil},
		{"192.167.255.255", nil},
		{"192.169.0.0", nil},
		{"100.63.255.255", nil},
		{"100.128.0.0", nil},
		{"169.253.255.255", nil},
		{"169.255.0.0", nil},
		{"198.17.255.255", nil},
		{"198.20.0.0", nil},
		{"126.255.255.255", nil},
		{"128.0.0.0", nil},
		{"223.255.255.255", nil},
		{"93.184.216.34", nil},
		{"[2606:4700:4700::1111]", nil},
		{"[2001:4860:4860::8888]", nil},
		{"example.com", nil},
		{"123.example.com", nil},
		{"localhost.example.com", nil},
		{"xn--bcher-kva.example", nil},
		{"0x5db8d822", ErrScheme},     // 93.184.216.34 in hex
		{"1572395042", ErrScheme},     // the same in decimal
		{"93.184.216.034", ErrScheme}, // octal 034 is 28: not what it looks like
		{"1.2.3.4.5", ErrScheme},      // five parts
		{"example.123", ErrScheme},    // ends in a number, is no address
		{"256.0.0.1", ErrScheme},      // out of range
		{"0x100000000", ErrScheme},    // out of range
		{"999999999999999999999", ErrScheme},
	}
	for _, tt := range tests {
		u := &url.URL{Scheme: "http", Host: tt.host}
		if err := g.checkHost(u); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("checkHost(%s) = %v, want %v", tt.host, err, tt.want)
		}
	}
}

// TestParseLegacyIPv4 follows the WHATWG URL standard's IPv4 parser.
func TestParseLegacyIPv4(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" when it is no IPv4 address
	}{
		{"127.0.0.1", "127.0.0.1"},
		{"127.1", "127.0.0.1"},
		{"127.0.1", "127.0.0.1"},
		{"2130706433", "127.0.0.1"},
		{"0x7f000001", "127.0.0.1"},
		{"0X7F000001", "127.0.0.1"},
		{"0177.0.0.1", "127.0.0.1"},
		{"0x7f.1", "127.0.0.1"},
		{"0x7f.0x0.0x0.0x1", "127.0.0.1"},
		{"0", "0.0.0.0"},
		{"0x", "0.0.0.0"},
		{"00", "0.0.0.0"},
		{"4294967295", "255.255.255.255"},
		{"192.168.257", "192.168.1.1"},
		{"4294967296", ""},
		{"256.1.1.1", ""},
		{"1.256.1.1", ""},
		{"1.1.1.256", ""},
		{"1.1.65536", ""},
		{"1.2.3.4.5", ""},
		{"08", ""}, // 8 is no octal digit
		{"0x1g", ""},
		{"1..2", ""},
		{"-1", ""},
		{"+1", ""},
		{"1_0", ""},
	}
	for _, tt := range tests {
		a, ok := parseLegacyIPv4(tt.in)
		got := ""
		if ok {
			got = a.String()
		}
		if got != tt.want {
			t.Errorf("parseLegacyIPv4(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestURLLength: the limit is on the bytes of an http(s) or file:// URL;
// data: URLs are capped by their decoded size instead.
func TestURLLength(t *testing.T) {
	base := "https://example.com/"
	tests := []struct {
		name string
		url  string
		want error
	}{
		{"at the limit", base + strings.Repeat("a", MaxURLBytes-len(base)), nil},
		{"one byte over", base + strings.Repeat("a", MaxURLBytes-len(base)+1), ErrScheme},
		{"100 KB", base + strings.Repeat("a", 100<<10), ErrScheme},
		{"long file://", "file:///" + strings.Repeat("d/", MaxURLBytes), ErrScheme},
		{"long data:", "data:text/plain;base64," + strings.Repeat("QUFB", 4<<10), nil},
	}
	for _, tt := range tests {
		_, err := ParseURL(tt.url)
		if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "aaaa") {
			t.Errorf("%s: the error repeats the URL", tt.name)
		}
	}
}
