package local

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/filestage/filestage/internal/testhttp"
	"github.com/filestage/filestage/providers"
	"github.com/filestage/filestage/spool"
)

// stageBytes stores body through Store, as stage_connector_file does.
func (h *harness) stageBytes(t *testing.T, body []byte, name, mimetype string) providers.Slot {
	t.Helper()
	sum := md5.Sum(body)
	sp, err := spool.Write(strings.NewReader(string(body)), h.p.store.tmp, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	slot, err := h.p.Store(context.Background(), providers.UploadRequest{ToolkitSlug: "gmail", ToolSlug: "GMAIL_SEND_EMAIL",
		Filename: name, Mimetype: mimetype, MD5: sum, Size: int64(len(body)), Owner: "alice"},
		providers.Body{Data: sp, Size: sp.Size, MD5: sp.MD5, Temp: sp})
	if err != nil {
		t.Fatal(err)
	}
	return slot
}

func get(t *testing.T, method, rawURL string, headers map[string]string) (*http.Response, []byte) {
	t.Helper()
	return testhttp.Do(t, method, rawURL, headers, nil)
}

func TestDownload(t *testing.T) {
	h := newHarness(t, 1<<20)
	body := []byte("0123456789abcdefghij")
	slot := h.stageBytes(t, body, "report.txt", "text/plain")
	if slot.DownloadURL == "" || !slot.DownloadExpiresAt.Equal(h.clock.Add(DefaultDownloadTTL)) {
		t.Fatalf("download URL %q until %v", slot.DownloadURL, slot.DownloadExpiresAt)
	}
	etag := `"` + hexMD5(body) + `"`
	tests := []struct {
		name    string
		method  string
		headers map[string]string
		status  int
		body    string
		check   map[string]string
	}{
		{"whole", http.MethodGet, nil, 200, string(body), map[string]string{
			"Content-Type": "text/plain", "Content-Length": "20", "ETag": etag, "Accept-Ranges": "bytes",
			"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"}},
		{"head", http.MethodHead, nil, 200, "", map[string]string{"Content-Length": "20", "ETag": etag}},
		{"range", http.MethodGet, map[string]string{"Range": "bytes=5-9"}, 206, "56789", map[string]string{"Content-Range": "bytes 5-9/20"}},
		{"suffix range", http.MethodGet, map[string]string{"Range": "bytes=-3"}, 206, "hij", nil},
		{"unsatisfiable range", http.MethodGet, map[string]string{"Range": "bytes=30-"}, 416, "", nil},
		{"if-none-match hit", http.MethodGet, map[string]string{"If-None-Match": etag}, 304, "", nil},
		{"if-none-match miss", http.MethodGet, map[string]string{"If-None-Match": `"other"`}, 200, string(body), nil},
		{"if-match miss", http.MethodGet, map[string]string{"If-Match": `"other"`}, 412, "", nil},
		{"if-range stale", http.MethodGet, map[string]string{"Range": "bytes=0-1", "If-Range": `"other"`}, 200, string(body), nil},
		{"if-range fresh", http.MethodGet, map[string]string{"Range": "bytes=0-1", "If-Range": etag}, 206, "01", nil},
		// Many ranges would cost more in part headers than the file.
		{"several ranges", http.MethodGet, map[string]string{"Range": "bytes=0-0,2-2,4-4"}, 200, string(body), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, got := get(t, tt.method, slot.DownloadURL, tt.headers)
			if resp.StatusCode != tt.status || (tt.status != 416 && string(got) != tt.body) {
				t.Errorf("%d %q, want %d %q", resp.StatusCode, got, tt.status, tt.body)
			}
			for k, v := range tt.check {
				if resp.Header.Get(k) != v {
					t.Errorf("%s: %q, want %q", k, resp.Header.Get(k), v)
				}
			}
		})
	}
}

func hexMD5(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

// TestDownloadNames: every name comes back exactly through filename*, and
// the ASCII filename never carries a quote, slash or control character.
func TestDownloadNames(t *testing.T) {
	h := newHarness(t, 1<<20)
	names := []string{`plain.txt`, `say "hi".txt`, `back\slash.txt`, `a/b/../c.txt`, `Überweisung März.pdf`, `报告.docx`,
		`semi;colon.txt`, `per%20cent.txt`, "tab\there.txt", `emoji 📎.png`, `'quote'.txt`, ` spaces .txt`}
	slot := h.stageBytes(t, []byte("named"), "x.txt", "text/plain")
	for _, name := range names {
		u, _ := h.p.DownloadURL(slot.Key, name)
		resp, got := get(t, http.MethodGet, u, nil)
		if resp.StatusCode != 200 || string(got) != "named" {
			t.Errorf("%q: %d %q", name, resp.StatusCode, got)
			continue
		}
		cd := resp.Header.Get("Content-Disposition")
		disp, params, err := mime.ParseMediaType(cd)
		if err != nil || disp != "attachment" {
			t.Errorf("%q: %q does not parse: %v", name, cd, err)
			continue
		}
		// Go's parser decodes filename* into filename, preferring it.
		if params["filename"] != name {
			t.Errorf("%q: filename* reads %q (%s)", name, params["filename"], cd)
		}
		ascii, _, _ := strings.Cut(strings.TrimPrefix(cd, `attachment; filename="`), `"; filename*=`)
		if strings.ContainsAny(ascii, "\"\\/\t;%") || strings.ContainsFunc(ascii, func(r rune) bool { return r > 0x7e }) {
			t.Errorf("%q: ASCII filename %q", name, ascii)
		}
	}
}

// TestDownloadRefusals: a download URL works only as signed, while it and
// its object last, and says why not.
func TestDownloadRefusals(t *testing.T) {
	h := newHarness(t, 1<<20)
	h.p.store.retention = 48 * time.Hour
	slot := h.stageBytes(t, []byte("secret bytes"), "s.txt", "text/plain")
	other := h.stageBytes(t, []byte("other bytes"), "o.txt", "text/plain")
	set := func(key, value string) func(u *url.URL) {
		return func(u *url.URL) {
			q := u.Query()
			if value == "" {
				q.Del(key)
			} else {
				q.Set(key, value)
			}
			u.RawQuery = q.Encode()
		}
	}
	tests := []struct {
		name   string
		change func(u *url.URL)
		// signAt is when the URL is signed, clock when it is used.
		signAt, clock time.Duration
		status        int
		code          string
	}{
		{"as signed", func(*url.URL) {}, 0, 0, 200, ""},
		{"no signature", set("signature", ""), 0, 0, 403, "AccessDenied"},
		{"no expires", set("expires", ""), 0, 0, 403, "AccessDenied"},
		{"other signature", set("signature", strings.Repeat("A", 43)), 0, 0, 403, "SignatureDoesNotMatch"},
		{"later expiry", set("expires", "9999999999"), 0, 0, 403, "SignatureDoesNotMatch"},
		{"expiry spelled otherwise", func(u *url.URL) { set("expires", "+"+u.Query().Get("expires"))(u) }, 0, 0, 403, "AccessDenied"},
		{"key with a newline", func(u *url.URL) { u.Path += "\n" }, 0, 0, 404, "NoSuchKey"},
		{"other name", set("name", "evil.html"), 0, 0, 403, "SignatureDoesNotMatch"},
		{"name removed", set("name", ""), 0, 0, 403, "SignatureDoesNotMatch"},
		{"other key", func(u *url.URL) { u.Path = "/files/" + other.Key }, 0, 0, 403, "SignatureDoesNotMatch"},
		{"upload URL's signature", func(u *url.URL) {
			s := h.slot(t, []byte("upload"), 6)
			su, _ := url.Parse(s.URL)
			*u = *su
		}, 0, 0, 403, "SignatureDoesNotMatch"},
		{"URL expired", func(*url.URL) {}, 0, DefaultDownloadTTL + time.Second, 403, "AccessDenied"},
		{"retention ended", func(*url.URL) {}, 48*time.Hour - time.Minute, 48 * time.Hour, 404, "NoSuchKey"},
	}
	start := h.clock
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.clock = start.Add(tt.signAt)
			signed, _ := h.p.DownloadURL(slot.Key, "s.txt")
			u, _ := url.Parse(signed)
			tt.change(u)
			h.clock = start.Add(tt.clock)
			resp, body := get(t, http.MethodGet, u.String(), nil)
			if resp.StatusCode != tt.status || (tt.code != "" && !strings.Contains(string(body), `"code":"`+tt.code+`"`)) {
				t.Errorf("%d %s, want %d %s", resp.StatusCode, body, tt.status, tt.code)
			}
			if tt.status != 200 && strings.Contains(string(body), "secret bytes") {
				t.Error("a refusal carried the bytes")
			}
		})
	}
}

// TestRawQuery: URLs are built as url.Values would encode them, whatever
// the name, so that their signatures read the same.
func TestRawQuery(t *testing.T) {
	for _, name := range []string{"", "a.pdf", "a b&c=d.pdf", "100%.txt", "ü+é/#?.pdf", "\"quoted\";x", "\t\n"} {
		want := url.Values{"expires": {"1800000000"}, "signature": {"abc-_"}}
		if name != "" {
			want.Set("name", name)
		}
		if got := rawQuery("expires", "1800000000", "name", name, "signature", "abc-_"); got != want.Encode() {
			t.Errorf("%q: %s, want %s", name, got, want.Encode())
		}
	}
}
