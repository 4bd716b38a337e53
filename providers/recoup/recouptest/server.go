// Package recouptest is a fake Recoup for tests: POST /api/connectors/files
// as documented (API key auth, {url, toolSlug} validation, the {error,
// message} error body), fetching the URL itself with net/http and keeping
// the bytes in memory. Unlike the real service it fetches any URL,
// loopback included, so tests can serve the source themselves.
package recouptest

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/filestage/filestage/providers/internal/fakeplatform"
)

// Reset, given as a scripted status, cuts the connection (TCP RST) instead
// of answering.
const Reset = fakeplatform.Reset

// MaxBytes is the largest file the fake fetches.
const MaxBytes = 64 << 20

// Request is one request the fake received, faulted ones included.
type Request = fakeplatform.Request

// Server is the fake. Its methods are safe for concurrent use.
type Server struct {
	// URL is the API's base URL (RECOUP_BASE_URL).
	URL string
	// APIKey is the only key the API accepts, as x-api-key or bearer token.
	APIKey string

	// platform is not embedded: Recoup has no uploads to script faults for.
	platform *fakeplatform.Platform
	fetch    *http.Client
	storage  *fakeplatform.Storage
}

// New starts a fake Recoup that stops when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{
		APIKey:  "recoup_test_" + fakeplatform.RandomHex(12),
		fetch:   &http.Client{Timeout: 30 * time.Second},
		storage: fakeplatform.NewStorage(0),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/connectors/files", s.stage)
	s.platform = fakeplatform.Start(t, mux, fakeplatform.MaxBody)
	s.URL = s.platform.URL
	return s
}

// Env points the recoup provider at the fake.
func (s *Server) Env() map[string]string {
	return map[string]string{"RECOUP_BASE_URL": s.URL, "RECOUP_API_KEY": s.APIKey}
}

// FailNext scripts the API's next answer: status (or Reset), headers and
// body. Calls queue up, one answer each.
func (s *Server) FailNext(status int, header http.Header, body string) {
	s.platform.FailNext(status, header, body)
}

// Requests returns what the fake received so far, in order.
func (s *Server) Requests() []Request { return s.platform.Requests() }

// Object returns the bytes stored under key (the descriptor's s3key).
func (s *Server) Object(key string) ([]byte, bool) { return s.storage.Object(key) }

// ContentType returns the Content-Type the object under key was stored
// with, as S3 keeps it ("" when none was sent).
func (s *Server) ContentType(key string) (string, bool) {
	o, ok := s.storage.Stat(key)
	return o.ContentType, ok
}

// Objects is how many files the fake holds.
func (s *Server) Objects() int { return s.storage.Objects() }

var toolSlug = regexp.MustCompile(`^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$`)

func (s *Server) stage(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("x-api-key") != s.APIKey && fakeplatform.Bearer(r) != s.APIKey {
		apiError(w, http.StatusUnauthorized, "Unauthorized: invalid or missing API key")
		return
	}
	var in struct {
		URL      string `json:"url"`
		ToolSlug string `json:"toolSlug"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		apiError(w, http.StatusBadRequest, "Invalid JSON body")
		return
	}
	u, err := url.Parse(in.URL)
	switch {
	case in.URL == "":
		apiError(w, http.StatusBadRequest, "url is required")
		return
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		apiError(w, http.StatusBadRequest, "url must be a valid http(s) URL")
		return
	case in.ToolSlug == "":
		apiError(w, http.StatusBadRequest, "toolSlug is required")
		return
	case !toolSlug.MatchString(in.ToolSlug):
		apiError(w, http.StatusBadRequest, "toolSlug must be UPPERCASE_SNAKE_CASE, e.g. LINKEDIN_CREATE_LINKED_IN_POST")
		return
	}
	data, name, err := s.get(r, u)
	if err != nil {
		apiError(w, http.StatusBadGateway, "Failed to stage file: "+err.Error())
		return
	}
	toolkit, _, _ := strings.Cut(in.ToolSlug, "_")
	key := fmt.Sprintf("connector-files/%s/%s/%s_%s", strings.ToLower(toolkit), in.ToolSlug, fakeplatform.RandomHex(6), name)
	mimetype, _, _ := mime.ParseMediaType(http.DetectContentType(data))
	s.storage.PutTyped(key, "", mimetype, data)
	fakeplatform.JSON(w, http.StatusOK, map[string]any{"success": true, "name": name, "mimetype": mimetype, "s3key": key})
}

// get fetches the file the way a server-side stager does: one GET, a
// 2xx answer, a cap on the size.
func (s *Server) get(r *http.Request, u *url.URL) ([]byte, string, error) {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, "", err
	}
	resp, err := s.fetch.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("fetching the image failed")
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, "", fmt.Errorf("fetching the image answered %d", resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxBytes+1))
	switch {
	case err != nil:
		return nil, "", fmt.Errorf("reading the image failed")
	case len(data) > MaxBytes:
		return nil, "", fmt.Errorf("the file is larger than %d bytes", MaxBytes)
	}
	name := path.Base(u.Path)
	if _, params, err := mime.ParseMediaType(resp.Header.Get("Content-Disposition")); err == nil && params["filename"] != "" {
		name = path.Base(params["filename"])
	}
	if name == "/" || name == "." {
		name = "file"
	}
	return data, name, nil
}

func apiError(w http.ResponseWriter, status int, msg string) {
	fakeplatform.JSON(w, status, map[string]any{"error": status, "message": msg})
}
