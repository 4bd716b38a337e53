package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/filestage/filestage/internal/browsertest"
	"github.com/filestage/filestage/internal/faultproxy"
	"github.com/filestage/filestage/internal/testfile"
	"github.com/filestage/filestage/schema"
)

// page is one browser tab on an upload page.
type page struct {
	t   *testing.T
	ctx context.Context
}

func openPage(t *testing.T, browser context.Context, pageURL string) *page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	p := &page{t: t, ctx: ctx}
	// The tab lives as long as the context of its first action: this
	// one, not a shorter one.
	if err := chromedp.Do(ctx, chromedp.Navigate(pageURL)); err != nil {
		t.Fatalf("opening %s: %v", pageURL, err)
	}
	return p
}

func (p *page) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("browser: %v (page says %q)", err, p.text())
	}
}

// phase waits until the page's phase is want (or error, which ends the
// wait early), or fails the test. (chromedp's Poll builds a function in the
// page, which the page's CSP forbids: it is polled from here.)
func (p *page) phase(want string) {
	p.t.Helper()
	got, err := pagePhase(p.ctx, want, 60*time.Second)
	if err != nil || got != want {
		p.t.Fatalf("page phase %q (%v), want %s; page says %q", got, err, want, p.text())
	}
}

// pagePhase polls the upload page's phase until it is want or error.
func pagePhase(ctx context.Context, want string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('app').dataset.phase || ''`))
		if err != nil || got == want || got == "error" {
			return got, err
		}
		select {
		case <-ctx.Done():
			return got, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (p *page) text() string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ''`))
	return s
}

// choose picks a file in the page's file input, as a person would.
func (p *page) choose(path string) {
	p.t.Helper()
	p.do(chromedp.WaitVisible(chromedp.ID("file")), chromedp.SetUploadFiles(chromedp.ID("file"), []string{path}))
}

// screenshot saves the page as docs/upload-NAME.png with
// UPDATE_SCREENSHOTS=true; it checks one can be taken either way.
func (p *page) screenshot(name string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		p.t.Fatalf("screenshot: %v", err)
	}
	if os.Getenv("UPDATE_SCREENSHOTS") == "true" {
		if err := os.WriteFile(filepath.Join("docs", "upload-"+name+".png"), png, 0o644); err != nil {
			p.t.Fatal(err)
		}
	}
}

func writeTemp(t *testing.T, name string, body []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, body, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func pdf(n int) []byte { return append([]byte("%PDF-1.7\n"), testfile.Random(n)...) }

// askForFile calls request_user_upload from a client that cannot open
// pages, so it answers with the link.
func askForFile(t *testing.T, c *client.Client, args map[string]any) schema.UserUploadResponse {
	t.Helper()
	args["toolSlug"] = "GMAIL_SEND_EMAIL"
	asked := decode[schema.UserUploadResponse](t, call(t, c, "request_user_upload", args))
	if asked.Status != "waiting_for_user" || asked.UploadURL == "" {
		t.Fatalf("request_user_upload: %+v", asked)
	}
	return asked
}

func checkStaged(t *testing.T, c *client.Client, asked schema.UserUploadResponse, body []byte) schema.UserUploadResponse {
	t.Helper()
	got := decode[schema.UserUploadResponse](t, call(t, c, "get_user_upload", map[string]any{"upload_id": asked.UploadID, "wait_seconds": 20}))
	sum := md5.Sum(body)
	if got.Status != "staged" || got.MD5 != hex.EncodeToString(sum[:]) || got.Size == nil || *got.Size != int64(len(body)) || got.S3Key == "" {
		t.Fatalf("get_user_upload after the page said done: %+v", got)
	}
	return got
}

// TestUploadPage: in a real browser, a person chooses their file on the
// page; the assistant's get_user_upload returns a descriptor of exactly
// those bytes, which are in storage — the local store and a connector
// platform's.
func TestUploadPage(t *testing.T) {
	browser := browsertest.Start(t)
	for _, name := range []string{"local", "composio"} {
		t.Run(name, func(t *testing.T) {
			b, env := backends[name](t)
			if name != "local" {
				env["FILESTAGE_PROVIDER"] = name
			}
			s := start(t, env, "serve", "--transport", "http", "--listen", "127.0.0.1:0")
			c := dial(t, s.addr, "", legacy)
			asked := askForFile(t, c, map[string]any{"mimetype": "application/pdf", "filename": "contract.pdf",
				"message": "The signed contract, to attach to the email to Dana."})
			body := pdf(3 << 20)
			p := openPage(t, browser, asked.UploadURL)
			p.phase("ready")
			if name == "local" {
				p.screenshot("ready")
			}
			p.choose(writeTemp(t, "contract.pdf", body))
			p.phase("done")
			if name == "local" {
				p.screenshot("done")
			}
			got := checkStaged(t, c, asked, body)
			if stored, ok := b.object(t, got.S3Key); !ok || !bytes.Equal(stored, body) {
				t.Errorf("storage holds %d bytes under %s (found %v)", len(stored), got.S3Key, ok)
			}
			// The link worked once: opened again, the page says so.
			p = openPage(t, browser, asked.UploadURL)
			p.phase("error")
			if !strings.Contains(strings.ToLower(p.text()), "already") {
				t.Errorf("a used link's page says %q", p.text())
			}
			if name == "local" {
				p.screenshot("used")
			}
		})
	}
}

// TestUploadPageResumes: the network drops mid-upload; the page resumes
// where it stopped and the file arrives whole.
func TestUploadPageResumes(t *testing.T) {
	browser := browsertest.Start(t)
	s := start(t, nil, "serve", "--transport", "http", "--listen", "127.0.0.1:0")
	proxy := faultproxy.Start(t, s.addr)
	c := dial(t, s.addr, "", legacy)
	asked := askForFile(t, c, map[string]any{})
	u, _ := url.Parse(asked.UploadURL)
	body := testfile.Random(256 << 20)
	p := openPage(t, browser, "http://"+proxy.Addr()+u.Path)
	p.phase("ready")
	p.choose(writeTemp(t, "big.bin", body))
	waitFor(t, "some bytes to arrive", func() bool {
		st := decode[schema.UserUploadResponse](t, call(t, c, "get_user_upload", map[string]any{"upload_id": asked.UploadID}))
		return st.ReceivedBytes != nil && *st.ReceivedBytes > 8<<20
	})
	conns := proxy.Conns()
	proxy.Drop()
	p.phase("done")
	if proxy.Conns() <= conns {
		t.Errorf("the page finished without connecting again (%d connections)", proxy.Conns())
	}
	checkStaged(t, c, asked, body)
}

// TestUploadPageRefusals: a file the link does not take is refused on the
// page, saying why, and nothing is stored; a link past its time says so.
func TestUploadPageRefusals(t *testing.T) {
	browser := browsertest.Start(t)
	s := start(t, nil, "serve", "--transport", "http", "--listen", "127.0.0.1:0", "--upload-link-ttl", "2s")
	c := dial(t, s.addr, "", legacy)
	png := testfile.PNG(64 << 10)
	tests := []struct {
		name, file string
		body       []byte
		args       map[string]any
		says       string
	}{
		{"too large", "big.pdf", pdf(4000), map[string]any{"max_bytes": 1000}, "large"},
		{"wrong type by its name", "photo.png", png, map[string]any{"mimetype": "application/pdf"}, "type"},
		// The page lets it through; the server judges the bytes.
		{"wrong type by its bytes", "photo.pdf", png, map[string]any{"mimetype": "application/pdf"}, "type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			asked := askForFile(t, c, tt.args)
			p := openPage(t, browser, asked.UploadURL)
			p.phase("ready")
			p.choose(writeTemp(t, tt.file, tt.body))
			p.phase("error")
			if !strings.Contains(strings.ToLower(p.text()), tt.says) {
				t.Errorf("the page says %q; want it to mention %q", p.text(), tt.says)
			}
			if tt.name == "too large" {
				p.screenshot("too-large")
			}
			st := decode[schema.UserUploadResponse](t, call(t, c, "get_user_upload", map[string]any{"upload_id": asked.UploadID}))
			if st.Status == "staged" {
				t.Errorf("a refused file was staged: %+v", st)
			}
		})
	}
	if n := countFiles(filepath.Join(s.dataDir, "objects")); n != 0 {
		t.Errorf("%d objects stored from refused files", n)
	}
	asked := askForFile(t, c, map[string]any{})
	time.Sleep(2500 * time.Millisecond)
	p := openPage(t, browser, asked.UploadURL)
	p.phase("error")
	if !strings.Contains(strings.ToLower(p.text()), "expired") {
		t.Errorf("an expired link's page says %q", p.text())
	}
	p.screenshot("expired")
}

// browserOpener is a client that opens pages for its user (URL-mode
// elicitation) in the browser, where the person chooses the file.
type browserOpener struct {
	t       *testing.T
	browser context.Context
	file    string
}

func (o browserOpener) Elicit(_ context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	go func() {
		ctx, cancel := chromedp.NewContext(o.browser)
		defer cancel()
		if err := chromedp.Do(ctx, chromedp.Navigate(req.Params.URL), chromedp.WaitVisible(chromedp.ID("file")), chromedp.SetUploadFiles(chromedp.ID("file"), []string{o.file})); err != nil {
			o.t.Errorf("the browser: %v", err)
			return
		}
		if phase, err := pagePhase(ctx, "done", 60*time.Second); err != nil || phase != "done" {
			o.t.Errorf("the page ended in %q: %v", phase, err)
		}
	}()
	return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{Action: mcp.ElicitationResponseActionAccept}}, nil
}

// TestUploadPageByElicitation: a client that opens URLs for its user gets
// the descriptor from request_user_upload itself, once the person sent the
// file on the page.
func TestUploadPageByElicitation(t *testing.T) {
	browser := browsertest.Start(t)
	s := start(t, nil, "serve", "--transport", "http", "--listen", "127.0.0.1:0")
	body := pdf(2 << 20)
	c := opener(t, s.addr, "", browserOpener{t: t, browser: browser, file: writeTemp(t, "contract.pdf", body)})
	got := decode[schema.UserUploadResponse](t, call(t, c, "request_user_upload", map[string]any{"toolSlug": "GMAIL_SEND_EMAIL", "mimetype": "application/pdf"}))
	sum := md5.Sum(body)
	if got.Status != "staged" || got.MD5 != hex.EncodeToString(sum[:]) || got.Mimetype != "application/pdf" {
		t.Fatalf("request_user_upload: %+v", got)
	}
	stored, err := os.ReadFile(filepath.Join(s.dataDir, "objects", filepath.FromSlash(got.S3Key)))
	if err != nil || !bytes.Equal(stored, body) {
		t.Errorf("stored: %v, %d bytes", err, len(stored))
	}
}
