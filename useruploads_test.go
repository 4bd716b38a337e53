package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	mcptransport "github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/filestage/filestage/auth"
	"github.com/filestage/filestage/internal/testfile"
	"github.com/filestage/filestage/schema"
	"github.com/filestage/filestage/upload"
)

// sendFile does what the upload page does, with the tus protocol: create
// the upload for the link behind pageURL, then send the bytes.
func sendFile(t testing.TB, pageURL, name string, body []byte) error {
	u, err := url.Parse(pageURL)
	if err != nil {
		return err
	}
	id := strings.TrimPrefix(u.Path, upload.PathPrefix)
	endpoint := u.Scheme + "://" + u.Host + upload.PathTus
	b64 := base64.StdEncoding.EncodeToString
	req, _ := http.NewRequest(http.MethodPost, endpoint, nil)
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Length", strconv.Itoa(len(body)))
	req.Header.Set("Upload-Metadata", "link "+b64([]byte(id))+",filename "+b64([]byte(name)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return &httpError{resp.Status}
	}
	req, _ = http.NewRequest(http.MethodPatch, resp.Header.Get("Location"), bytes.NewReader(body))
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Offset", "0")
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	if resp, err = http.DefaultClient.Do(req); err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return &httpError{resp.Status}
	}
	return nil
}

type httpError struct{ status string }

func (e *httpError) Error() string { return e.status }

// TestUserUpload: the assistant asks for the person's own file; the person
// sends it through the link's page (here, its tus endpoint); the assistant
// gets a descriptor of bytes in storage that never passed through the
// conversation — over stdio and streamable HTTP.
func TestUserUpload(t *testing.T) {
	for _, tr := range transports[:2] {
		t.Run(tr.name, func(t *testing.T) {
			s := start(t, nil, tr.args...)
			c := tr.connect(t, s, mcp.LATEST_LEGACY_PROTOCOL_VERSION)
			asked := decode[schema.UserUploadResponse](t, call(t, c, "request_user_upload", map[string]any{
				"toolSlug": "GMAIL_SEND_EMAIL", "mimetype": "application/pdf", "message": "The signed contract, for the email to Dana.",
			}))
			if asked.Status != "waiting_for_user" || asked.UploadURL == "" || asked.UploadID == "" || asked.ExpiresAt == "" {
				t.Fatalf("request_user_upload: %+v", asked)
			}
			body := append([]byte("%PDF-1.7\n"), testfile.Random(2<<20)...)
			if err := sendFile(t, asked.UploadURL, "contract.pdf", body); err != nil {
				t.Fatal(err)
			}
			got := decode[schema.UserUploadResponse](t, call(t, c, "get_user_upload", map[string]any{"upload_id": asked.UploadID, "wait_seconds": 10}))
			sum := md5.Sum(body)
			if got.Status != "staged" || got.MD5 != hex.EncodeToString(sum[:]) || got.Size == nil || *got.Size != int64(len(body)) ||
				got.Mimetype != "application/pdf" || got.Name != "contract.pdf" {
				t.Fatalf("get_user_upload: %+v", got)
			}
			stored, err := os.ReadFile(filepath.Join(s.dataDir, "objects", filepath.FromSlash(got.S3Key)))
			if err != nil || !bytes.Equal(stored, body) {
				t.Fatalf("stored object %s: %v, %d bytes", got.S3Key, err, len(stored))
			}
			if err := sendFile(t, asked.UploadURL, "again.pdf", body); err == nil || !strings.Contains(err.Error(), "410") {
				t.Errorf("a second upload through the used link: %v", err)
			}
		})
	}
}

// urlOpener is a client that can open pages for its user (URL-mode
// elicitation): it sends the file, as a person on the page would.
type urlOpener struct {
	t    *testing.T
	body []byte
}

func (o urlOpener) Elicit(_ context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	if req.Params.Mode != mcp.ElicitationModeURL || req.Params.URL == "" {
		return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{Action: mcp.ElicitationResponseActionDecline}}, nil
	}
	go func() {
		if err := sendFile(o.t, req.Params.URL, "photo.png", o.body); err != nil {
			o.t.Errorf("sending the file: %v", err)
		}
	}()
	return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{Action: mcp.ElicitationResponseActionAccept}}, nil
}

// opener connects a client that declares URL-mode elicitation (it can open
// pages for its user), handled by h, with token ("" for none).
func opener(t *testing.T, addr, token string, h client.ElicitationHandler) *client.Client {
	t.Helper()
	c, err := client.NewStreamableHttpClient("http://"+addr+"/mcp", mcptransport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
	if err != nil {
		t.Fatal(err)
	}
	c = client.NewClient(c.GetTransport(), client.WithElicitationHandler(h))
	// Start's context lives as long as the connection.
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_LEGACY_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "opener", Version: "1"}
	init.Params.Capabilities.Elicitation = &mcp.ElicitationCapability{URL: &struct{}{}}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestUserUploadByElicitation: a client that opens URLs for its user gets
// the descriptor from the one call, with progress while the file arrives;
// another client cannot read the upload.
func TestUserUploadByElicitation(t *testing.T) {
	alice, la, _ := auth.NewToken("alice", nil)
	bob, lb, _ := auth.NewToken("bob", nil)
	s := start(t, map[string]string{"FILESTAGE_TOKENS_FILE": tokensFile(t, la, lb)}, "serve", "--transport", "http", "--listen", "127.0.0.1:0")
	body := testfile.PNG(1 << 20)
	c := opener(t, s.addr, alice, urlOpener{t: t, body: body})
	got := decode[schema.UserUploadResponse](t, call(t, c, "request_user_upload", map[string]any{"toolSlug": "SLACK_UPLOAD_FILE", "mimetype": "image/*"}))
	sum := md5.Sum(body)
	if got.Status != "staged" || got.MD5 != hex.EncodeToString(sum[:]) || got.Mimetype != "image/png" {
		t.Fatalf("request_user_upload with a client that opens URLs: %+v", got)
	}
	b := dial(t, s.addr, bob, legacy)
	e := toolError(t, call(t, b, "get_user_upload", map[string]any{"upload_id": got.UploadID}))
	if e.Slug != "NOT_FOUND" {
		t.Errorf("bob reading alice's upload: %+v", e)
	}
}
