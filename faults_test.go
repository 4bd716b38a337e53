package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/filestage/filestage/internal/faultproxy"
	"github.com/filestage/filestage/internal/testfile"
	"github.com/filestage/filestage/providers/composio/composiotest"
	"github.com/filestage/filestage/schema"
)

// faultCase stages body through a server whose source or storage side a
// fault breaks.
type faultCase struct {
	name string
	// setup starts the storage side and returns the backend and the
	// environment for filestage, and the URL to stage.
	setup func(t *testing.T, body []byte) (backend, map[string]string, string)
	// slug is the tool error expected; "" means the stage must succeed
	// with the bytes really stored.
	slug string
	// says is what the error's message must say, when set.
	says string
}

// TestFaults injects faults between filestage and its source and between
// filestage and the storage, with a proxy that slows, cuts, resets or lies.
// Every case ends in a descriptor for bytes the storage really holds or a
// clear tool error; no temporary file is left behind and no goroutine
// outlives the server.
func TestFaults(t *testing.T) {
	// source serves body, through a proxy with fault f.
	source := func(t *testing.T, body []byte, f faultproxy.Fault) string {
		src := sourceServer(t, map[string][]byte{"/report.pdf": body}, "application/pdf")
		p := faultproxy.Start(t, strings.TrimPrefix(src.URL, "http://"))
		p.Set(f)
		return "http://" + p.Addr() + "/report.pdf"
	}
	localWith := func(env map[string]string, f faultproxy.Fault) func(*testing.T, []byte) (backend, map[string]string, string) {
		return func(t *testing.T, body []byte) (backend, map[string]string, string) {
			b, e := backends["local"](t)
			for k, v := range env {
				e[k] = v
			}
			return b, e, source(t, body, f)
		}
	}
	// composioWith starts the Composio fake, scripts it, and puts a proxy
	// with fault f in front of its storage.
	composioWith := func(script func(*composiotest.Server), f faultproxy.Fault) func(*testing.T, []byte) (backend, map[string]string, string) {
		return func(t *testing.T, body []byte) (backend, map[string]string, string) {
			f2 := composiotest.New(t)
			b := backend{storage: "s3", object: fake(f2.Object), secrets: []string{f2.APIKey}}
			e := f2.Env()
			e["FILESTAGE_PROVIDER"] = "composio"
			p := faultproxy.Start(t, strings.TrimPrefix(f2.URL, "http://"))
			p.Set(f)
			f2.SetStorageURL("http://" + p.Addr())
			if script != nil {
				script(f2)
			}
			return b, e, source(t, body, faultproxy.Fault{})
		}
	}
	// s3Behind puts a proxy with fault f between filestage and the S3
	// server.
	s3Behind := func(f faultproxy.Fault) func(*testing.T, []byte) (backend, map[string]string, string) {
		return func(t *testing.T, body []byte) (backend, map[string]string, string) {
			b, e := backends["s3"](t)
			u, err := url.Parse(e["AWS_ENDPOINT_URL_S3"])
			if err != nil {
				t.Fatal(err)
			}
			p := faultproxy.Start(t, u.Host)
			p.Set(f)
			e["AWS_ENDPOINT_URL_S3"] = "http://" + p.Addr()
			return b, e, source(t, body, faultproxy.Fault{})
		}
	}
	// storm answers the next n API calls with status and the platform's
	// slug for it.
	storm := func(status, n int, slug string) func(*composiotest.Server) {
		return func(f *composiotest.Server) {
			for range n {
				f.FailNext(status, http.Header{"Retry-After": {"0"}},
					fmt.Sprintf(`{"error":{"message":"try later","code":%d,"slug":%q,"status":%d}}`, status, slug, status))
			}
		}
	}
	endless := func(t *testing.T, body []byte) (backend, map[string]string, string) {
		b, e := backends["local"](t)
		e["FILESTAGE_MAX_BYTES"] = "2MiB"
		src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for r.Context().Err() == nil { // no Content-Length: it never ends
				if _, err := w.Write(body); err != nil {
					return
				}
			}
		}))
		t.Cleanup(src.Close)
		return b, e, src.URL + "/stream"
	}
	lie := func(answer string) faultproxy.Fault {
		return faultproxy.Fault{Kind: faultproxy.Lie, Answer: answer}
	}
	const ok200 = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"

	cases := []faultCase{
		{"source: healthy, through the proxy", localWith(nil, faultproxy.Fault{}), "", ""},
		{"source: slow-loris", localWith(map[string]string{"FILESTAGE_FETCH_TIMEOUT": "1s"}, faultproxy.Fault{Kind: faultproxy.Slow, After: 4096, Delay: 20 * time.Millisecond}), "SOURCE_TIMEOUT", "deadline exceeded"},
		{"source: reset mid-body", localWith(nil, faultproxy.Fault{Kind: faultproxy.Reset, After: 300 << 10}), "SOURCE_UNREACHABLE", ""},
		{"source: body shorter than Content-Length", localWith(nil, faultproxy.Fault{Kind: faultproxy.Cut, After: 300 << 10}), "SOURCE_UNREACHABLE", ""},
		{"source: never ends", endless, "SOURCE_TOO_LARGE", "2097152"},
		{"provider: 429 storm, then answers", composioWith(storm(429, 3, "RATE_LIMITED"), faultproxy.Fault{}), "", ""},
		{"provider: 503 storm", composioWith(storm(503, 10, "SERVICE_UNAVAILABLE"), faultproxy.Fault{}), "SERVICE_UNAVAILABLE", "503"},
		{"storage: reset mid-upload", composioWith(nil, faultproxy.Fault{Kind: faultproxy.Reset}), "STORAGE_ERROR", ""},
		{"storage: 200, stored nothing", composioWith(nil, lie(ok200)), "STORAGE_ERROR", "does not show the bytes were stored"},
		{"s3: 503 storm", s3Behind(lie("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")), "STORAGE_ERROR", "503"},
		{"s3: 200, stored nothing", s3Behind(lie(ok200)), "STORAGE_ERROR", "does not show the bytes were stored"},
	}
	body := append([]byte("%PDF-1.7\n"), testfile.Random(1<<20)...)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := runtime.NumGoroutine()
			// Everything the case starts ends with this inner test.
			t.Run("stage", func(t *testing.T) { runFault(t, tc, body) })
			http.DefaultClient.CloseIdleConnections()
			deadline := time.Now().Add(10 * time.Second)
			for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if after := runtime.NumGoroutine(); after > before {
				buf := make([]byte, 1<<20)
				t.Errorf("%d goroutines before, %d after\n%s", before, after, buf[:runtime.Stack(buf, true)])
			}
		})
	}
}

func runFault(t *testing.T, tc faultCase, body []byte) {
	b, env, src := tc.setup(t, body)
	s := start(t, env, transports[1].args...)
	c := transports[1].connect(t, s, mcp.LATEST_LEGACY_PROTOCOL_VERSION)
	res := call(t, c, "stage_connector_file", map[string]any{"url": src, "toolSlug": "GMAIL_SEND_EMAIL"})
	if tc.slug == "" {
		out := decode[schema.StageResponse](t, res)
		if stored, ok := b.object(t, out.S3Key); !ok || !bytes.Equal(stored, body) || out.MD5 != md5hex(body) {
			t.Errorf("a descriptor for %s, but the storage does not hold the bytes", out.S3Key)
		}
	} else {
		e := toolError(t, res)
		if e.Slug != tc.slug || e.Message == "" || e.SuggestedFix == "" || !strings.Contains(e.Message, tc.says) {
			t.Errorf("got %+v, want %s", e, tc.slug)
		}
	}
	checkTmpEmpty(t, s.dataDir)
	c.Close()
	s.stop(t)
}
