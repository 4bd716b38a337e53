// Package alloytest is a fake Alloy for tests: the connectivity API's
// presigned upload request as documented (path, bearer auth, x-api-version,
// validation, deduplication by MD5) and, on the same server, the S3 bucket
// its presigned URLs point at, which keeps uploads in memory only once
// their Content-MD5 checks out. Faults can be scripted for the API and the
// bucket apart.
package alloytest

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/filestage/filestage/providers/internal/fakeplatform"
)

// Reset, given as a scripted status, cuts the connection (TCP RST) instead
// of answering; an upload is cut halfway through its body.
const Reset = fakeplatform.Reset

// URLTTL is how long the fake's presigned URLs stay valid.
const URLTTL = 15 * time.Minute

// Request is one request the fake received, faulted ones included.
type Request = fakeplatform.Request

// Server is the fake; URL is ALLOY_BASE_URL. Its methods are safe for
// concurrent use.
type Server struct {
	*fakeplatform.Platform
	// APIKey is the only bearer token the API accepts.
	APIKey string

	bucket *fakeplatform.Storage
}

// New starts a fake Alloy that stops when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{APIKey: "alloy_test_" + fakeplatform.RandomHex(12), bucket: fakeplatform.NewStorage(URLTTL)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /connectors/files/upload/request", s.uploadRequest)
	mux.Handle("PUT /alloy-user-files/{key...}", s.bucket)
	s.Platform = fakeplatform.Start(t, mux, fakeplatform.MaxBody)
	return s
}

// Env points the alloy provider at the fake.
func (s *Server) Env() map[string]string {
	return map[string]string{"ALLOY_BASE_URL": s.URL, "ALLOY_API_KEY": s.APIKey, "ALLOY_API_VERSION": "2025-09"}
}

// Object returns the bytes stored under key.
func (s *Server) Object(key string) ([]byte, bool) { return s.bucket.Object(key) }

// ContentType returns the Content-Type the object under key was stored
// with, as S3 keeps it ("" when none was sent).
func (s *Server) ContentType(key string) (string, bool) {
	o, ok := s.bucket.Stat(key)
	return o.ContentType, ok
}

// Put stores data under key as though it had been uploaded.
func (s *Server) Put(key string, data []byte) { s.bucket.Put(key, "", data) }

var hexMD5 = regexp.MustCompile(`^[0-9a-fA-F]{32}$`)

// parseMD5 takes the digest as hex or base64, as Alloy documents.
func parseMD5(v string) ([16]byte, bool) {
	var sum [16]byte
	b, err := hex.DecodeString(v)
	if !hexMD5.MatchString(v) || err != nil {
		if b, err = base64.StdEncoding.DecodeString(v); err != nil || len(b) != md5.Size {
			return sum, false
		}
	}
	copy(sum[:], b)
	return sum, true
}

// uploadRequest answers 400 and 401 with a short JSON message: Alloy
// documents those statuses but not their bodies.
func (s *Server) uploadRequest(w http.ResponseWriter, r *http.Request) {
	if fakeplatform.Bearer(r) != s.APIKey {
		apiError(w, http.StatusUnauthorized, "Unauthorized")
		return
	}
	if r.Header.Get("x-api-version") == "" {
		apiError(w, http.StatusBadRequest, "x-api-version header is required")
		return
	}
	var in struct {
		Filename string `json:"filename"`
		MimeType string `json:"mimeType"`
		MD5      string `json:"md5"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		apiError(w, http.StatusBadRequest, "invalid JSON body")
		return
	}
	for _, f := range []struct{ name, v string }{{"filename", in.Filename}, {"mimeType", in.MimeType}, {"md5", in.MD5}} {
		if f.v == "" {
			apiError(w, http.StatusBadRequest, f.name+" is required")
			return
		}
	}
	sum, ok := parseMD5(in.MD5)
	if !ok {
		apiError(w, http.StatusBadRequest, "md5 must be the MD5 digest in hex or base64")
		return
	}

	// Alloy deduplicates across all of an account's files.
	typ, key := "new", fakeplatform.RandomHex(12)+"_"+in.Filename
	if k, ok := s.bucket.Find(sum, ""); ok {
		typ, key = "existing", k
	}
	fakeplatform.JSON(w, http.StatusOK, map[string]any{"presignedUrl": map[string]any{
		"md5":          base64.StdEncoding.EncodeToString(sum[:]),
		"presignedUrl": s.bucket.Sign(s.URL, "/alloy-user-files/", fakeplatform.Grant{Key: key, ContentType: in.MimeType, MD5: &sum}),
		"type":         typ,
		"s3Key":        key,
	}})
}

func apiError(w http.ResponseWriter, status int, msg string) {
	fakeplatform.JSON(w, status, map[string]string{"message": msg})
}
