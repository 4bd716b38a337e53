package tools

import (
	"context"
	"encoding/base64"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/filestage/filestage/providers"
	"github.com/filestage/filestage/providers/local"
	"github.com/filestage/filestage/schema"
	"github.com/filestage/filestage/source"
)

// connCounter counts accepted connections: a refused stage must not even
// connect, which counting requests would not show.
type connCounter struct {
	net.Listener
	n *atomic.Int64
}

func (l connCounter) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// TestStageRefusesHostileURLs runs hostile URLs through the tool as a
// server without --allow-private-urls would: each one is a tool error
// whose slug says what kind of failure it is and whose message says why,
// the private server is never connected to and storage never asked.
func TestStageRefusesHostileURLs(t *testing.T) {
	var conns atomic.Int64
	private := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	private.Listener = connCounter{private.Listener, &conns}
	private.Start()
	defer private.Close()
	_, port, _ := net.SplitHostPort(private.Listener.Addr().String())
	p := ":" + port

	// A provider that fetches URLs itself (Recoup) gets the same check
	// before a URL is handed over.
	fake, stager := &fakeProvider{}, &urlStager{}
	svc := &Service{
		Sources:  newOpener(t, source.Options{MaxBytes: 1 << 20, Timeout: 10 * time.Second}),
		SpoolDir: t.TempDir(),
		MaxBytes: 1 << 20,
		Logger:   slog.New(slog.DiscardHandler),
	}
	tests := []struct {
		url, slug, reason string
	}{
		{"http://127.0.0.1" + p + "/x.png", "SOURCE_REFUSED", "the host is a loopback address"},
		{"http://127.1" + p + "/x.png", "SOURCE_REFUSED", "the host is a loopback address"},
		{"http://2130706433" + p + "/x.png", "SOURCE_REFUSED", "the host is a loopback address"},
		{"http://0x7f.1" + p + "/x.png", "SOURCE_REFUSED", "the host is a loopback address"},
		{"http://[::1]" + p + "/x.png", "SOURCE_REFUSED", "the host is a loopback address"},
		{"http://[::ffff:7f00:1]" + p + "/x.png", "SOURCE_REFUSED", "loopback address (IPv4-mapped)"},
		{"http://localhost" + p + "/x.png", "SOURCE_REFUSED", "loopback address (localhost)"},
		{"http://0.0.0.0" + p + "/x.png", "SOURCE_REFUSED", "unspecified (this-host) address"},
		{"http://169.254.169.254/latest/meta-data/", "SOURCE_REFUSED", "cloud metadata address"},
		{"http://[fd00:ec2::254]/latest/meta-data/", "SOURCE_REFUSED", "cloud metadata address"},
		{"http://10.0.0.1/x.png", "SOURCE_REFUSED", "private (RFC 1918) address"},
		{"http://[64:ff9b::7f00:1]/x.png", "SOURCE_REFUSED", "NAT64 address"},
		{"http://[2002:7f00:1::1]/x.png", "SOURCE_REFUSED", "6to4 address"},
		{"http://public.example@127.0.0.1" + p + "/x.png", "INVALID_ARGUMENT", "user name or password"},
		{"http://127.0.0.1" + p + "/" + strings.Repeat("a", 100<<10), "INVALID_ARGUMENT", "longer than the 8192-byte limit"},
		{"gopher://127.0.0.1" + p + "/_x", "INVALID_ARGUMENT", `scheme "gopher"`},
	}
	for i := range 2 * len(tests) {
		tt := tests[i%len(tests)]
		svc.Provider = map[bool]providers.Provider{false: fake, true: stager}[i >= len(tests)]
		_, err := svc.Stage(context.Background(), schema.StageRequest{URL: tt.url, ToolSlug: "GMAIL_SEND_EMAIL"})
		var te *Error
		if !errors.As(err, &te) {
			t.Errorf("%.80s: %v, want a tool error", tt.url, err)
			continue
		}
		if te.Slug != tt.slug || !strings.HasPrefix(te.Message, "url: ") || !strings.Contains(te.Message, tt.reason) || te.Fix == "" {
			t.Errorf("%.80s: %s %d %q (fix %q), want %s saying %q", tt.url, te.Slug, te.Status, te.Message, te.Fix, tt.slug, tt.reason)
		}
		if wantStatus := map[string]int{"SOURCE_REFUSED": 403, "INVALID_ARGUMENT": 400}[tt.slug]; te.Status != wantStatus {
			t.Errorf("%.80s: status %d, want %d", tt.url, te.Status, wantStatus)
		}
		if len(te.Message) > 400 {
			t.Errorf("%.80s: a %d-byte message", tt.url, len(te.Message))
		}
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("the private server accepted %d connections", n)
	}
	if n := fake.calls(); n != 0 {
		t.Errorf("storage was asked %d times", n)
	}
	if stager.got.URL != "" {
		t.Errorf("a URL-fetching provider was handed %.80s", stager.got.URL)
	}
}

// TestStageHostileFilenames stages inline bytes into the local store under
// hostile names, given as the filename argument and as the data: URL's
// name: each is stored under a safe name, below <data-dir>/objects, or
// refused as an argument when nothing of the name is left.
func TestStageHostileFilenames(t *testing.T) {
	dataDir := t.TempDir()
	store, err := local.New(providers.Settings{DataDir: dataDir, PublicURL: "http://127.0.0.1:1", MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	svc := &Service{
		Provider: store,
		Sources:  newOpener(t, source.Options{MaxBytes: 1 << 20}),
		SpoolDir: t.TempDir(),
		MaxBytes: 1 << 20,
		Logger:   slog.New(slog.DiscardHandler),
	}
	tests := []struct {
		filename string // the argument; "" passes the name in the data: URL instead
		dataName string // percent-encoded name= parameter
		// want is the stored name (an extension is added to fit the
		// bytes), a prefix of it ending in *, or "" for INVALID_ARGUMENT.
		want string
	}{
		{"../../etc/passwd", "", "passwd.txt"},
		{`..\..\boot.ini`, "", "boot.ini"},
		{"/etc/shadow", "", "shadow.txt"},
		{"..", "", ""},
		{"\uFF0E\uFF0E\uFF0F\uFF0E\uFF0E\uFF0Fetc\uFF0Fpasswd", "", "passwd.txt"},
		{"\uFF0E\uFF0E", "", ""},
		{"\u2025", "", ""},
		{"\uFE52\uFE52\uFF0Fx.txt", "", "x.txt"},
		{"..\u2215x.txt", "", "_x.txt"},
		{"a\x00b.txt", "", "ab.txt"},
		{"invoice\u202Efdp.exe", "", "invoicefdp.exe"},
		{strings.Repeat("\u65E5", 100) + ".txt", "", strings.Repeat("\u65E5", 65) + ".txt"},
		{"", "..%2F..%2Fetc%2Fpasswd", "passwd.txt"},
		{"", "%EF%BC%8E%EF%BC%8E%EF%BC%8Fsecret.txt", "secret.txt"},
		{"", "%2E%2E", "file-*"}, // no name left: one is made from the MD5
	}
	for i, tt := range tests {
		body := base64.StdEncoding.EncodeToString([]byte("hostile name " + string(rune('a'+i))))
		u := "data:text/plain;base64," + body
		if tt.dataName != "" {
			u = "data:text/plain;name=" + tt.dataName + ";base64," + body
		}
		out, err := svc.Stage(context.Background(), schema.StageRequest{URL: u, ToolSlug: "GMAIL_SEND_EMAIL", Filename: tt.filename})
		if tt.want == "" {
			if te := AsError(err); te.Slug != "INVALID_ARGUMENT" || !strings.HasPrefix(te.Message, "filename: ") {
				t.Errorf("%q: got %v, want INVALID_ARGUMENT for filename", tt.filename, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q %q: %v", tt.filename, tt.dataName, err)
			continue
		}
		if prefix, ok := strings.CutSuffix(tt.want, "*"); out.Name != tt.want && !(ok && strings.HasPrefix(out.Name, prefix)) {
			t.Errorf("%q %q: stored as %q, want %q", tt.filename, tt.dataName, out.Name, tt.want)
		}
		if strings.ContainsAny(out.Name, "/\\\x00") || strings.HasPrefix(out.Name, ".") {
			t.Errorf("%q %q: name %q", tt.filename, tt.dataName, out.Name)
		}
		if !strings.HasPrefix(out.S3Key, "gmail/GMAIL_SEND_EMAIL/"+out.MD5) {
			t.Errorf("%q %q: key %q", tt.filename, tt.dataName, out.S3Key)
		}
	}

	// Every file in the data directory is an object below objects/, or
	// the signing key; the walk starts a level up, where an escape from
	// the data directory would land.
	objects := filepath.Join(dataDir, "objects") + string(filepath.Separator)
	filepath.WalkDir(filepath.Dir(dataDir), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if !strings.HasPrefix(p, objects) && filepath.Dir(p) != dataDir {
			t.Errorf("a file outside the objects: %s", p)
		}
		return nil
	})
}
