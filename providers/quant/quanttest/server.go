// Package quanttest is a fake Quant for tests: POST
// /api/v3/organizations/{organisation}/ai/files in both documented modes
// (direct base64 content up to 7 MB, 413 above; presigned upload URL on
// requestUploadUrl), bearer auth scoped to one organization, and, on the
// same server, the S3 bucket the upload URLs point at, which keeps uploads
// in memory. Faults can be scripted for the API and the bucket apart.
//
// Quant documents its error statuses but not their bodies; the fake
// answers {"error": "<message>"}.
package quanttest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"path"
	"sync"
	"testing"
	"time"

	"github.com/filestage/filestage/providers/internal/fakeplatform"
)

// Reset, given as a scripted status, cuts the connection (TCP RST) instead
// of answering; an upload is cut halfway through its body.
const Reset = fakeplatform.Reset

// DirectMax is the largest file the API takes as base64 content.
const DirectMax = 7 * 1000 * 1000

// MaxRequestBytes is the API's request size limit, an API gateway's.
const MaxRequestBytes = 10 * 1000 * 1000

// URLTTL is how long upload URLs last (expiresIn).
const URLTTL = time.Hour

// Bucket is the S3 bucket of s3Uri, which upload URLs address path-style.
const Bucket = "quant-ai-files"

// Request is one request the fake received, faulted ones included.
type Request = fakeplatform.Request

// Server is the fake; URL is QUANT_BASE_URL. Its methods are safe for
// concurrent use.
type Server struct {
	*fakeplatform.Platform
	// APIKey is the only bearer token the API accepts.
	APIKey string
	// Org is the only organization the token may use.
	Org string

	bucket *fakeplatform.Storage
	mu     sync.Mutex
	files  map[string]string // fileId to s3 key
}

// New starts a fake Quant that stops when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{
		APIKey: "quant_test_" + fakeplatform.RandomHex(12),
		Org:    "org-" + fakeplatform.RandomHex(4),
		bucket: fakeplatform.NewStorage(URLTTL),
		files:  map[string]string{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v3/organizations/{org}/ai/files", s.upload)
	mux.Handle("PUT /"+Bucket+"/{key...}", s.bucket)
	mux.Handle("GET /"+Bucket+"/{key...}", s.bucket)
	s.Platform = fakeplatform.Start(t, mux, MaxRequestBytes)
	return s
}

// Env points the quant provider at the fake.
func (s *Server) Env() map[string]string {
	return map[string]string{"QUANT_BASE_URL": s.URL, "QUANT_API_TOKEN": s.APIKey, "QUANT_ORGANIZATION": s.Org}
}

// Object returns the bytes the bucket holds under key, an S3 object key
// (the s3Key of a presigned upload, the key of a direct upload's s3Uri).
// A fileId is not a key: FileKey says which key it names.
func (s *Server) Object(key string) ([]byte, bool) { return s.bucket.Object(key) }

// ContentType returns the Content-Type the object under key was stored
// with: the upload's header, or a direct upload's contentType.
func (s *Server) ContentType(key string) (string, bool) {
	o, ok := s.bucket.Stat(key)
	return o.ContentType, ok
}

// FileKey returns the S3 object key of the file Quant calls fileID.
func (s *Server) FileKey(fileID string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key, ok := s.files[fileID]
	return key, ok
}

// Objects is how many files the bucket holds.
func (s *Server) Objects() int { return s.bucket.Objects() }

func (s *Server) upload(w http.ResponseWriter, r *http.Request) {
	switch token := fakeplatform.Bearer(r); {
	case token == "":
		apiError(w, http.StatusUnauthorized, "Missing bearer token")
		return
	case token != s.APIKey || r.PathValue("org") != s.Org:
		apiError(w, http.StatusForbidden, "Access denied")
		return
	case r.ContentLength > MaxRequestBytes:
		apiError(w, http.StatusRequestEntityTooLarge, "Request too large (use requestUploadUrl for large files)")
		return
	}
	var in struct {
		Content          *string        `json:"content"`
		RequestUploadURL bool           `json:"requestUploadUrl"`
		Size             *int64         `json:"size"`
		Filename         string         `json:"filename"`
		ContentType      string         `json:"contentType"`
		Metadata         map[string]any `json:"metadata"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		apiError(w, http.StatusBadRequest, "Invalid JSON body")
		return
	}
	if in.ContentType == "" {
		apiError(w, http.StatusBadRequest, "contentType is required")
		return
	}
	if in.Size != nil && *in.Size < 0 {
		apiError(w, http.StatusBadRequest, "size must not be negative")
		return
	}
	name := path.Base(in.Filename)
	if in.Filename == "" || name == "/" || name == "." {
		name = "file"
	}
	fileID := uuid()
	key := fmt.Sprintf("ai-files/%s/%s/%s", s.Org, fileID, name)
	// "artifactType is auto-populated from contentType if not provided."
	metadata := map[string]any{"artifactType": in.ContentType}
	maps.Copy(metadata, in.Metadata)
	out := map[string]any{
		"fileId":      fileID,
		"filename":    name,
		"contentType": in.ContentType,
		"metadata":    metadata,
		"createdAt":   time.Now().UTC().Format(time.RFC3339),
	}

	if in.RequestUploadURL {
		// The upload URL is signed for the size, if one was given, but not
		// for an MD5: Quant takes none. As S3 does, the bucket still
		// checks a Content-MD5 that is sent against the bytes.
		g := fakeplatform.Grant{Key: key, ContentType: in.ContentType, Size: in.Size}
		if in.Size != nil {
			out["size"] = *in.Size
		}
		s.keep(fileID, key)
		out["uploadUrl"] = s.bucket.Sign(s.URL, "/"+Bucket+"/", g)
		out["s3Key"] = key
		out["expiresIn"] = int(URLTTL / time.Second)
		fakeplatform.JSON(w, http.StatusCreated, out)
		return
	}

	if in.Content == nil {
		apiError(w, http.StatusBadRequest, "content is required unless requestUploadUrl is true")
		return
	}
	data, err := base64.StdEncoding.DecodeString(*in.Content)
	switch {
	case err != nil:
		apiError(w, http.StatusBadRequest, "content must be base64-encoded")
		return
	case len(data) > DirectMax:
		apiError(w, http.StatusRequestEntityTooLarge, "File too large (use requestUploadUrl for large files)")
		return
	case in.Size != nil && *in.Size != int64(len(data)):
		apiError(w, http.StatusBadRequest, "size does not match the content")
		return
	}
	s.bucket.PutTyped(key, "", in.ContentType, data)
	s.keep(fileID, key)
	// "S3 URI (direct upload only)": s3://<bucket>/<key>, the key as it
	// is, and no s3Key, which is presigned uploads' only.
	out["s3Uri"] = "s3://" + Bucket + "/" + key
	out["url"] = s.bucket.Sign(s.URL, "/"+Bucket+"/", fakeplatform.Grant{Key: key, Method: http.MethodGet})
	out["size"] = len(data)
	fakeplatform.JSON(w, http.StatusCreated, out)
}

func (s *Server) keep(fileID, key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[fileID] = key
}

func apiError(w http.ResponseWriter, status int, msg string) {
	fakeplatform.JSON(w, status, map[string]string{"error": msg})
}

func uuid() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
