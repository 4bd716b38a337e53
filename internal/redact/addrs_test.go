package redact

import (
	"net/netip"
	"strings"
	"testing"
)

func TestAddrs(t *testing.T) {
	const A = AddrWord
	tests := []struct{ in, want string }{
		{"read tcp 10.0.0.5:43210->1.2.3.4:80: connection reset by peer", "read tcp " + A + "->" + A + ": connection reset by peer"},
		{"dial tcp [2001:db8::1]:443: connect: connection refused", "dial tcp " + A + ": connect: connection refused"},
		{"write tcp [fe80::1%eth0]:5000->[fe80::2%25eth0]:80: broken pipe", "write tcp " + A + "->" + A + ": broken pipe"},
		{"from fe80::1%eth0.100 on", "from " + A + " on"},
		{"lookup x on 127.0.0.53:53: no such host", "lookup x on " + A + ": no such host"},
		{"mapped ::ffff:10.0.0.5 and ::ffff:a00:5", "mapped " + A + " and " + A},
		{"[::ffff:127.0.0.1]:8080", A},
		{"listen tcp [::]:80", "listen tcp " + A},
		{"::1", A},
		{"x::1", "x" + A},        // glued to a word: still an address
		{"a10.0.0.1", "a" + A},   // ditto
		{"9991.2.3.4", "99" + A}, // 91.2.3.4
		{"256.1.1.1", "2" + A},   // 56.1.1.1
		{"1.2.3.4.5.6", A + ".5.6"},
		{"to 8.8.8.8.", "to " + A + "."},
		{"(192.168.1.1)", "(" + A + ")"},
		{"http://10.0.0.1:8080/path", "http://" + A + "/path"},
		{"1:2:3:4:5:6:7:8:9", A + ":9"},
		{"port :99999999", "port :99999999"},
		{"10.0.0.1:123456", A + "6"},

		// Not addresses.
		{"std::vector", "st" + A + "vector"}, // d:: is an IPv6 address
		{"a::b", A},
		{"a :: b", "a :: b"},
		{"at 12:34:56.789", "at 12:34:56.789"},
		{"mac 00:1a:2b:3c:4d:5e", "mac 00:1a:2b:3c:4d:5e"},
		{"HTTP/1.1 502", "HTTP/1.1 502"},
		{"version 1.2.3", "version 1.2.3"},
		{"01.2.3.4", "0" + A}, // netip reads no leading zeros, but 1.2.3.4 is there
		{"deadbeef cafe", "deadbeef cafe"},
		{"[not an address]", "[not an address]"},
		{"[1.2.3.4]", "[" + A + "]"}, // brackets hold IPv6 only; the IPv4 inside still goes
		{"", ""},
		{"ünïcödé 10.0.0.1 ✓", "ünïcödé " + A + " ✓"},
	}
	for _, tt := range tests {
		if got := Addrs(tt.in); got != tt.want {
			t.Errorf("Addrs(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// addrsIn lists the substrings of s that parse as an IP address, zone
// left out and the bare "::" too (which Addrs keeps).
func addrsIn(s string) []string {
	var out []string
	for i := range len(s) {
		for j := i + 1; j <= len(s) && j-i <= maxAddrText; j++ {
			text := s[i:j]
			if text == "::" || strings.Contains(text, "%") {
				continue
			}
			if _, err := netip.ParseAddr(text); err == nil {
				out = append(out, text)
			}
		}
	}
	return out
}

// FuzzAddrs: no address of the input is left in the output, and text
// holding no address is unchanged.
func FuzzAddrs(f *testing.F) {
	for _, s := range []string{
		"read tcp 10.0.0.5:43210->1.2.3.4:80: connection reset by peer",
		"[fe80::1%eth0]:80", "::ffff:1.2.3.4", "1.2.3.4.5.6.7.8", "a:b:c:d:e:f:1:2.3.4.5",
		":::1", "::%eth0", "[::]", "x1.2.3.4y", "1::2::3", "9::1.2.3.4",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Addrs(s)
		for _, a := range addrsIn(s) {
			if strings.Contains(got, a) {
				t.Fatalf("Addrs(%q) = %q, still holding %q", s, got, a)
			}
		}
		if len(addrsIn(s)) == 0 && !strings.Contains(s, "[") && got != s {
			t.Fatalf("Addrs(%q) = %q, changed with no address in it", s, got)
		}
	})
}

func BenchmarkAddrs(b *testing.B) {
	msg := "url: unreachable: read tcp 10.0.0.5:43210->[2001:db8::1]:443: connection reset by peer; " + strings.Repeat("deadbeef:cafe ", 20)
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		Addrs(msg)
	}
}
