package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/filestage/filestage/internal/testfile"
	"github.com/filestage/filestage/providers"
	"github.com/filestage/filestage/providers/local"
	"github.com/filestage/filestage/schema"
	"github.com/filestage/filestage/transport"
)

// roundRobin is a load balancer without affinity: each request goes to the
// next replica, whatever session it belongs to, so every MCP exchange is
// split between replicas.
type roundRobin struct {
	*httptest.Server
	mu       sync.Mutex
	replicas []*url.URL
	next     int
	// mcp counts the MCP requests each replica was sent.
	mcp []int
	// sessions counts the answers that carried an Mcp-Session-Id.
	sessions int
}

// newRoundRobin starts the proxy before its replicas: they must know its
// URL (their --public-url) when they start.
func newRoundRobin(t *testing.T) *roundRobin {
	t.Helper()
	p := &roundRobin{}
	p.Server = httptest.NewServer(&httputil.ReverseProxy{Rewrite: p.rewrite, ModifyResponse: p.sawResponse})
	t.Cleanup(p.Close)
	return p
}

// add puts a replica listening on addr in the rotation.
func (p *roundRobin) add(addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.replicas = append(p.replicas, &url.URL{Scheme: "http", Host: addr})
	p.mcp = append(p.mcp, 0)
}

func (p *roundRobin) rewrite(r *httputil.ProxyRequest) {
	p.mu.Lock()
	i := p.next % len(p.replicas)
	p.next++
	if r.In.URL.Path == transport.PathMCP {
		p.mcp[i]++
	}
	target := p.replicas[i]
	p.mu.Unlock()
	r.SetURL(target)
	// As most load balancers do: the replica sees the Host the client
	// used, which is its --public-url's.
	r.Out.Host = r.In.Host
	r.SetXForwarded()
}

func (p *roundRobin) sawResponse(resp *http.Response) error {
	if resp.Header.Get(server.HeaderKeySessionID) != "" {
		p.mu.Lock()
		p.sessions++
		p.mu.Unlock()
	}
	return nil
}

// served returns how many MCP requests each replica was sent, and how many
// answers minted or echoed a session.
func (p *roundRobin) served() ([]int, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]int(nil), p.mcp...), p.sessions
}

// replicas starts two filestage instances on one data directory behind a
// new round-robin proxy, with args after serve --transport http.
func replicas(t *testing.T, args ...string) *roundRobin {
	t.Helper()
	lb := newRoundRobin(t)
	// One data directory, as a shared volume would be: the replicas share
	// the objects and the signing key. The upload URLs name the proxy.
	env := map[string]string{"FILESTAGE_DATA_DIR": t.TempDir(), "FILESTAGE_PUBLIC_URL": lb.URL}
	args = append([]string{"serve", "--transport", "http", "--listen", "127.0.0.1:0"}, args...)
	for range 2 {
		lb.add(start(t, env, args...).addr)
	}
	return lb
}

// TestStateless runs two replicas on one data directory behind a
// round-robin proxy and drives one streamable HTTP client through it: every
// request, whichever replica gets it, must be answered, uploads included.
func TestStateless(t *testing.T) {
	for _, version := range []string{mcp.LATEST_LEGACY_PROTOCOL_VERSION, mcp.LATEST_PROTOCOL_VERSION} {
		t.Run(version, func(t *testing.T) {
			lb := replicas(t, "--stateless")
			c, err := client.NewStreamableHttpClient(lb.URL + transport.PathMCP)
			if err != nil {
				t.Fatal(err)
			}
			connectWith(t, c, version)
			replicatedFlow(t, c, lb.URL)
			served, sessions := lb.served()
			for i, n := range served {
				if n == 0 {
					t.Errorf("replica %d served no MCP request (%v): the test did not spread the calls", i, served)
				}
			}
			if sessions > 0 {
				t.Errorf("%d answers carried %s in --stateless mode", sessions, server.HeaderKeySessionID)
			}
		})
	}
}

// TestStatefulReplicasNeedAffinity: without --stateless a session ID is
// known only to the replica that minted it (filestage refuses IDs it did
// not mint, where mcp-go alone would serve any), so behind a round-robin
// proxy the session fails at once, with a 404, rather than running each
// request in a session made up for it.
func TestStatefulReplicasNeedAffinity(t *testing.T) {
	lb := replicas(t)
	c, err := client.NewStreamableHttpClient(lb.URL + transport.PathMCP)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_LEGACY_PROTOCOL_VERSION
	_, err = c.Initialize(ctx, init)
	if err == nil {
		_, err = c.ListTools(ctx, mcp.ListToolsRequest{})
	}
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("a session used through two replicas: %v, want a 404", err)
	}
}

// TestStatelessSSE: an SSE session is a stream held by one replica, and
// its POSTs must reach that replica. Behind a load balancer without
// affinity they do not, so without --stateless an SSE client fails once
// its POST lands elsewhere; with it, the SSE endpoint refuses at once and
// names /mcp, which is what the flag changes for SSE.
func TestStatelessSSE(t *testing.T) {
	t.Run("without --stateless", func(t *testing.T) {
		lb := replicas(t)
		c, err := client.NewSSEMCPClient(lb.URL + transport.PathSSE)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Start(context.Background()); err != nil {
			t.Fatalf("start: %v", err)
		}
		defer c.Close()
		init := mcp.InitializeRequest{}
		init.Params.ProtocolVersion = mcp.LATEST_LEGACY_PROTOCOL_VERSION
		if _, err := c.Initialize(ctx, init); err == nil {
			t.Fatal("an SSE client worked across replicas without affinity: its stream and its POSTs reached different replicas, yet it worked")
		} else {
			t.Logf("as expected: %v", err)
		}
	})
	t.Run("with --stateless", func(t *testing.T) {
		lb := replicas(t, "--stateless")
		resp, err := http.Get(lb.URL + transport.PathSSE)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(b), transport.PathMCP) {
			t.Errorf("GET %s: %s %q, want 404 naming %s", transport.PathSSE, resp.Status, b, transport.PathMCP)
		}
	})
}

// TestStatelessSharedSigningKey: replicas that start together on a fresh
// shared data directory race to create its signing key; all must end up
// with the same one, so that an upload URL one issues is accepted by any.
func TestStatelessSharedSigningKey(t *testing.T) {
	dir := t.TempDir()
	const n = 8
	stores := make([]*local.Provider, n)
	errs := make([]error, n)
	var ready, done sync.WaitGroup
	ready.Add(1)
	for i := range n {
		done.Go(func() {
			ready.Wait() // all at once, to make the race likely
			stores[i], errs[i] = local.New(providers.Settings{DataDir: dir, PublicURL: "http://lb.example", MaxBytes: 1 << 20})
		})
	}
	ready.Done()
	done.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("replica %d: %v", i, errs[i])
		}
	}
	for i := range n {
		// Bytes of their own: a stored key is never uploaded to again.
		body := fmt.Appendf(nil, "the same key everywhere %d", i)
		sum := md5.Sum(body)
		slot, err := stores[i].RequestUpload(context.Background(), providers.UploadRequest{
			ToolkitSlug: "gmail", ToolSlug: "GMAIL_SEND_EMAIL", Filename: fmt.Sprintf("%d.txt", i), Mimetype: "text/plain", MD5: sum, Size: int64(len(body)),
		})
		if err != nil {
			t.Fatal(err)
		}
		// The next replica takes the upload.
		req := httptest.NewRequest(slot.Method, slot.URL, bytes.NewReader(body))
		for k, v := range slot.Headers {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		stores[(i+1)%n].ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Errorf("replica %d refused replica %d's upload URL: %d %s", (i+1)%n, i, rec.Code, rec.Body)
		}
	}
}

// replicatedFlow stages a URL, presigns and uploads bytes through the
// proxy at base, then stages the same bytes again and expects them found.
func replicatedFlow(t *testing.T, c *client.Client, base string) {
	t.Helper()
	img := testfile.PNG(64 << 10)
	body := testfile.PNG(256 << 10)
	sum := md5hex(body)
	src := sourceServer(t, map[string][]byte{"/logo": img, "/photo.png": body}, "image/png")

	staged := decode[schema.StageResponse](t, call(t, c, "stage_connector_file", map[string]any{"url": src.URL + "/logo", "toolSlug": "SLACK_UPLOAD_FILE"}))
	if staged.MD5 != md5hex(img) || staged.Type != "new" {
		t.Fatalf("stage: got %+v, want md5 %s, type new", staged, md5hex(img))
	}

	slot := decode[schema.PresignResponse](t, call(t, c, "request_presigned_upload", map[string]any{
		"toolkit_slug": "gmail", "tool_slug": "GMAIL_SEND_EMAIL", "filename": "photo.png", "mimetype": "image/png", "md5": sum,
	}))
	// The upload must go through the proxy too, to whichever replica.
	if slot.Type != "new" || slot.Method != http.MethodPut || !strings.HasPrefix(slot.NewPresignedURL, base+"/files/") {
		t.Fatalf("presign: got %+v, want a new PUT slot under %s", slot, base)
	}
	req, _ := http.NewRequest(slot.Method, slot.NewPresignedURL, bytes.NewReader(body))
	for k, v := range slot.Headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("PUT: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT: %s", resp.Status)
	}

	again := decode[schema.StageResponse](t, call(t, c, "stage_connector_file", map[string]any{"url": src.URL + "/photo.png", "toolSlug": "GMAIL_SEND_EMAIL"}))
	if again.Type != "existing" || again.S3Key != slot.Key || again.MD5 != sum {
		t.Errorf("stage of the uploaded bytes: got %+v, want existing under %s", again, slot.Key)
	}
}
