// Package composiotest is a fake Composio for tests: the files
// upload-request API as documented (paths, auth, validation, error envelope,
// deduplication by MD5) and, on the same server, the storage its presigned
// URLs point at, which keeps uploads in memory only once their Content-MD5
// checks out. Faults can be scripted for the API and the storage apart.
package composiotest

import (
	"cmp"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/filestage/filestage/providers/internal/fakeplatform"
)

// Reset, given as a scripted status, cuts the connection (TCP RST) instead
// of answering; an upload is cut halfway through its body.
const Reset = fakeplatform.Reset

// URLTTL is how long the fake's presigned URLs stay valid.
const URLTTL = time.Hour

// Storage backends the API may name in metadata.storage_backend.
const (
	S3    = "s3"
	Azure = "azure_blob_storage"
)

// Request is one request the fake received, faulted ones included.
type Request = fakeplatform.Request

// Server is the fake; URL is COMPOSIO_BASE_URL. Its methods are safe for
// concurrent use.
type Server struct {
	*fakeplatform.Platform
	// APIKey is the only key the API accepts.
	APIKey string

	storage *fakeplatform.Storage
	mu      sync.Mutex
	backend string
	// storageURL is where upload URLs point; the fake itself by default.
	storageURL string
	seq        int
}

// New starts a fake Composio that stops when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{
		APIKey:  "ak_test_" + fakeplatform.RandomHex(12),
		storage: fakeplatform.NewStorage(URLTTL),
		backend: S3,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v3/files/upload/request", s.uploadRequest)
	mux.Handle("PUT /s3/{key...}", s.storage)
	mux.Handle("PUT /azure/{key...}", s.storage)
	s.Platform = fakeplatform.Start(t, mux, fakeplatform.MaxBody)
	return s
}

// Env points the composio provider at the fake.
func (s *Server) Env() map[string]string {
	return map[string]string{"COMPOSIO_BASE_URL": s.URL, "COMPOSIO_API_KEY": s.APIKey}
}

// SetStorageURL makes later upload URLs point at base (a proxy in front
// of the fake's storage, say) instead of the fake itself.
func (s *Server) SetStorageURL(base string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.storageURL = base
}

// SetStorageBackend makes later upload requests issue URLs of backend (S3
// or Azure).
func (s *Server) SetStorageBackend(backend string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.backend = backend
}

// Object returns the bytes stored under key.
func (s *Server) Object(key string) ([]byte, bool) { return s.storage.Object(key) }

// ContentType returns the Content-Type the object under key was stored
// with, as S3 keeps it ("" when none was sent).
func (s *Server) ContentType(key string) (string, bool) {
	o, ok := s.storage.Stat(key)
	return o.ContentType, ok
}

// Put stores data under key as though it had been uploaded for the toolkit
// and tool, so that a test can start from stored bytes.
func (s *Server) Put(toolkit, tool, key string, data []byte) {
	s.storage.Put(key, scope(toolkit, tool), data)
}

// scope is what Composio deduplicates within: the same bytes for another
// tool are another file.
func scope(toolkit, tool string) string { return toolkit + "/" + tool }

var (
	hexMD5    = regexp.MustCompile(`^[0-9a-fA-F]{32}$`)
	slugChars = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
)

func (s *Server) uploadRequest(w http.ResponseWriter, r *http.Request) {
	if cmp.Or(r.Header.Get("x-api-key"), r.Header.Get("x-user-api-key")) != s.APIKey {
		apiError(w, http.StatusUnauthorized, "UNAUTHORIZED", "Invalid or missing API key", "Pass a valid API key in the x-api-key header.")
		return
	}
	var in struct {
		ToolkitSlug *string `json:"toolkit_slug"`
		ToolSlug    *string `json:"tool_slug"`
		Filename    *string `json:"filename"`
		Mimetype    *string `json:"mimetype"`
		MD5         *string `json:"md5"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		apiError(w, http.StatusBadRequest, "BAD_REQUEST", "The request body is not valid JSON", "Send a JSON object.", err.Error())
		return
	}
	var problems []string
	for _, f := range []struct {
		name string
		v    *string
	}{{"toolkit_slug", in.ToolkitSlug}, {"tool_slug", in.ToolSlug}, {"filename", in.Filename}, {"mimetype", in.Mimetype}, {"md5", in.MD5}} {
		if f.v == nil || *f.v == "" {
			problems = append(problems, f.name+": Required")
		}
	}
	if in.MD5 != nil && *in.MD5 != "" && !hexMD5.MatchString(*in.MD5) {
		problems = append(problems, "md5: must be the 32-character hex MD5 digest")
	}
	for _, f := range []*string{in.ToolkitSlug, in.ToolSlug} {
		if f != nil && *f != "" && !slugChars.MatchString(*f) {
			problems = append(problems, fmt.Sprintf("slug %q: invalid characters", *f))
		}
	}
	if len(problems) > 0 {
		apiError(w, http.StatusBadRequest, "BAD_REQUEST", "Invalid request body", "Fix the fields listed in errors.", problems...)
		return
	}
	var sum [16]byte
	b, _ := hex.DecodeString(*in.MD5)
	copy(sum[:], b)
	toolkit, tool := *in.ToolkitSlug, *in.ToolSlug

	s.mu.Lock()
	s.seq++
	id, backend := fmt.Sprintf("req_file_%06d", s.seq), s.backend
	s.mu.Unlock()
	key := fmt.Sprintf("projects/prj_fake/requests/%s/%s/%s", toolkit, tool, *in.Filename)
	typ := "new"
	if old, ok := s.storage.Stat(key); ok && old.MD5 != sum {
		typ = "update"
	}
	if k, ok := s.storage.Find(sum, scope(toolkit, tool)); ok {
		typ, key = "existing", k
	}
	g := fakeplatform.Grant{Key: key, ContentType: *in.Mimetype, MD5: &sum, Azure: backend == Azure, Tag: scope(toolkit, tool)}
	dir := "/s3/"
	if g.Azure {
		dir = "/azure/"
	}
	s.mu.Lock()
	base := cmp.Or(s.storageURL, s.URL)
	s.mu.Unlock()
	target := s.storage.Sign(base, dir, g)
	out := map[string]any{
		"id":                id,
		"key":               key,
		"new_presigned_url": target,
		"newPresignedUrl":   target,
		"type":              typ,
		"metadata":          map[string]any{"storage_backend": backend},
	}
	if typ == "update" {
		out["update_presigned_url"] = target
	}
	fakeplatform.JSON(w, http.StatusOK, out)
}

func apiError(w http.ResponseWriter, status int, slug, msg, fix string, errs ...string) {
	body := map[string]any{
		"message":       msg,
		"code":          status,
		"slug":          slug,
		"status":        status,
		"request_id":    "req_" + fakeplatform.RandomHex(8),
		"suggested_fix": fix,
	}
	if len(errs) > 0 {
		body["errors"] = errs
	}
	fakeplatform.JSON(w, status, map[string]any{"error": body})
}
