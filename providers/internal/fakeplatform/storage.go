package fakeplatform

import (
	"bytes"
	"cmp"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Storage is S3 (or Azure Blob Storage) behind presigned URLs: it takes a
// request only as its URL was signed, and stores an upload only once the
// bytes hash to their Content-MD5. Mount it at a pattern ending in
// {key...}. Its methods are safe for concurrent use.
type Storage struct {
	ttl     time.Duration
	mu      sync.Mutex
	grants  map[string]Grant  // by URL signature
	objects map[string]Object // by key
}

// Grant is what one presigned URL allows.
type Grant struct {
	Key string
	// Method is what the URL was signed for; PUT when empty.
	Method      string
	ContentType string
	// MD5 is the signed Content-MD5; without one, a Content-MD5 is only
	// checked against the bytes, if it is sent.
	MD5 *[16]byte
	// Size is the signed Content-Length, if one was.
	Size *int64
	// Azure makes the URL a SAS, and the storage answer as Azure's Put
	// Blob does, which also wants x-ms-blob-type.
	Azure bool
	// Tag is kept with the object, for a platform that deduplicates
	// within a scope.
	Tag string

	expires time.Time
}

// Object is what the storage holds under a key.
type Object struct {
	Data []byte
	MD5  [16]byte
	Tag  string
	// ContentType is what S3 and Azure keep of an upload's Content-Type
	// header; "" when it was stored without one.
	ContentType string
}

// NewStorage returns empty storage whose URLs last ttl.
func NewStorage(ttl time.Duration) *Storage {
	return &Storage{ttl: ttl, grants: map[string]Grant{}, objects: map[string]Object{}}
}

// Sign issues a presigned URL for g at base+dir+g.Key, shaped like the
// real thing: SigV4 query parameters, or a SAS for Azure.
func (s *Storage) Sign(base, dir string, g Grant) string {
	sig := RandomHex(32)
	g.expires = time.Now().Add(s.ttl)
	s.mu.Lock()
	s.grants[sig] = g
	s.mu.Unlock()
	q := url.Values{}
	if g.Azure {
		q.Set("sv", "2023-11-03")
		q.Set("se", g.expires.UTC().Format(time.RFC3339))
		q.Set("sr", "b")
		q.Set("sp", "cw")
		q.Set("sig", sig)
	} else {
		signed := g.expires.Add(-s.ttl).UTC()
		var headers []string
		if g.Size != nil {
			headers = append(headers, "content-length")
		}
		if g.MD5 != nil {
			headers = append(headers, "content-md5")
		}
		if g.ContentType != "" {
			headers = append(headers, "content-type")
		}
		q.Set("X-Amz-Algorithm", "AWS4-HMAC-SHA256")
		q.Set("X-Amz-Credential", "FAKEACCESSKEY/"+signed.Format("20060102")+"/us-east-1/s3/aws4_request")
		q.Set("X-Amz-Date", signed.Format("20060102T150405Z"))
		q.Set("X-Amz-Expires", strconv.Itoa(int(s.ttl/time.Second)))
		q.Set("X-Amz-SignedHeaders", strings.Join(append(headers, "host"), ";"))
		q.Set("X-Amz-Signature", sig)
	}
	u := url.URL{Path: dir + g.Key}
	return base + u.EscapedPath() + "?" + q.Encode()
}

// Put stores data under key as though it had been uploaded without a
// Content-Type.
func (s *Storage) Put(key, tag string, data []byte) { s.PutTyped(key, tag, "", data) }

// PutTyped stores data under key as though it had been uploaded with that
// Content-Type, as a platform that stores the bytes itself does.
func (s *Storage) PutTyped(key, tag, contentType string, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.objects[key] = Object{Data: bytes.Clone(data), MD5: md5.Sum(data), Tag: tag, ContentType: contentType}
}

// Object returns the bytes stored under key.
func (s *Storage) Object(key string) ([]byte, bool) {
	o, ok := s.Stat(key)
	return o.Data, ok
}

// Stat returns what is stored under key; its Data is a copy.
func (s *Storage) Stat(key string) (Object, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.objects[key]
	o.Data = bytes.Clone(o.Data)
	return o, ok
}

// Find returns a key holding bytes of that MD5 and tag.
func (s *Storage) Find(sum [16]byte, tag string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, o := range s.objects {
		if o.MD5 == sum && o.Tag == tag {
			return k, true
		}
	}
	return "", false
}

// Objects is how many objects the storage holds.
func (s *Storage) Objects() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.objects)
}

// ServeHTTP serves presigned requests: an upload (PUT) or a download (GET).
func (s *Storage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	sig := cmp.Or(q.Get("X-Amz-Signature"), q.Get("sig"))
	s.mu.Lock()
	g, ok := s.grants[sig]
	s.mu.Unlock()
	fail := func(status int, code, msg string) { storageError(w, g.Azure, status, code, msg) }
	switch {
	case !ok || sig == "":
		fail(http.StatusForbidden, "AccessDenied", "Unknown or missing signature.")
	case r.Method != cmp.Or(g.Method, http.MethodPut):
		fail(http.StatusForbidden, "SignatureDoesNotMatch", "The URL was signed for another method.")
	case r.PathValue("key") != g.Key:
		fail(http.StatusForbidden, "SignatureDoesNotMatch", "The URL was signed for another key.")
	case time.Now().After(g.expires):
		fail(http.StatusForbidden, "AccessDenied", "Request has expired.")
	case r.Method == http.MethodGet:
		data, ok := s.Object(g.Key)
		if !ok {
			fail(http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
			return
		}
		w.Write(data)
	default:
		s.put(w, r, g, fail)
	}
}

func (s *Storage) put(w http.ResponseWriter, r *http.Request, g Grant, fail func(status int, code, msg string)) {
	switch {
	case g.Azure && r.Header.Get("x-ms-blob-type") != "BlockBlob":
		fail(http.StatusBadRequest, "MissingRequiredHeader", "An HTTP header that's mandatory for this request is not specified: x-ms-blob-type.")
		return
	case r.Header.Get("Content-Type") != g.ContentType:
		fail(http.StatusForbidden, "SignatureDoesNotMatch", "Content-Type differs from the one signed.")
		return
	case g.Size != nil && r.ContentLength != *g.Size:
		fail(http.StatusForbidden, "SignatureDoesNotMatch", "Content-Length differs from the size signed.")
		return
	}
	var want []byte
	if v := r.Header.Get("Content-MD5"); v != "" {
		b, err := base64.StdEncoding.DecodeString(v)
		switch {
		case err != nil || len(b) != md5.Size:
			fail(http.StatusBadRequest, "InvalidDigest", "The Content-MD5 you specified was invalid.")
			return
		case g.MD5 != nil && !bytes.Equal(b, g.MD5[:]):
			fail(http.StatusForbidden, "SignatureDoesNotMatch", "Content-MD5 differs from the one signed.")
			return
		}
		want = b
	} else if g.MD5 != nil {
		fail(http.StatusForbidden, "SignatureDoesNotMatch", "Content-MD5 was signed but not sent.")
		return
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return // the client went away; nothing is stored
	}
	sum := md5.Sum(data)
	switch {
	case want == nil || bytes.Equal(sum[:], want):
	case g.Azure:
		fail(http.StatusBadRequest, "Md5Mismatch", "The MD5 value specified in the request did not match with the MD5 value calculated by the server.")
		return
	default:
		fail(http.StatusBadRequest, "BadDigest", "The Content-MD5 you specified did not match what we received.")
		return
	}
	s.mu.Lock()
	s.objects[g.Key] = Object{Data: data, MD5: sum, Tag: g.Tag, ContentType: r.Header.Get("Content-Type")}
	s.mu.Unlock()
	w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:])+`"`)
	if g.Azure {
		// Azure's Put Blob answers 201, S3's PutObject 200.
		w.Header().Set("Content-MD5", base64.StdEncoding.EncodeToString(sum[:]))
		w.WriteHeader(http.StatusCreated)
		return
	}
	w.WriteHeader(http.StatusOK)
}

type storageFault struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
	RequestID string   `xml:"RequestId,omitempty"`
}

// storageError answers as S3 does, or as Azure Blob Storage does, which
// puts its request ID and code in headers instead.
func storageError(w http.ResponseWriter, azure bool, status int, code, msg string) {
	id := RandomHex(8)
	f := storageFault{Code: code, Message: msg}
	if azure {
		w.Header().Set("x-ms-request-id", id)
		w.Header().Set("x-ms-error-code", code)
	} else {
		w.Header().Set("x-amz-request-id", id)
		f.RequestID = id
	}
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	io.WriteString(w, xml.Header)
	xml.NewEncoder(w).Encode(f)
}
