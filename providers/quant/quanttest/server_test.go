package quanttest

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/filestage/filestage/internal/testhttp"
)

func call(t *testing.T, method, url string, header map[string]string, body []byte) (int, []byte) {
	t.Helper()
	resp, b := testhttp.Do(t, method, url, header, body)
	return resp.StatusCode, b
}

func TestAPIContract(t *testing.T) {
	small := base64.StdEncoding.EncodeToString([]byte("hello"))
	big := base64.StdEncoding.EncodeToString(make([]byte, DirectMax+1))
	tests := []struct {
		name, auth, org, body string
		status                int
		fields                []string
	}{
		{"direct", "", "", `{"content":"` + small + `","filename":"a.txt","contentType":"text/plain","size":5}`, 201, []string{"fileId", "s3Uri", "url"}},
		{"presigned", "", "", `{"requestUploadUrl":true,"filename":"a.txt","contentType":"text/plain","size":5}`, 201, []string{"fileId", "uploadUrl", "s3Key", "expiresIn"}},
		{"no token", "-", "", `{"content":"` + small + `","contentType":"text/plain"}`, 401, nil},
		{"wrong token", "Bearer nope", "", `{"content":"` + small + `","contentType":"text/plain"}`, 403, nil},
		{"wrong organization", "", "other", `{"content":"` + small + `","contentType":"text/plain"}`, 403, nil},
		{"no contentType", "", "", `{"content":"` + small + `"}`, 400, nil},
		{"no content", "", "", `{"contentType":"text/plain"}`, 400, nil},
		{"not base64", "", "", `{"content":"***","contentType":"text/plain"}`, 400, nil},
		{"wrong size", "", "", `{"content":"` + small + `","contentType":"text/plain","size":6}`, 400, nil},
		{"over 7 MB", "", "", `{"content":"` + big + `","contentType":"text/plain"}`, 413, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(t)
			auth, org := "Bearer "+s.APIKey, s.Org
			switch tt.auth {
			case "":
			case "-":
				auth = ""
			default:
				auth = tt.auth
			}
			if tt.org != "" {
				org = tt.org
			}
			status, b := call(t, "POST", s.URL+"/api/v3/organizations/"+org+"/ai/files", map[string]string{"Authorization": auth, "Content-Type": "application/json"}, []byte(tt.body))
			if status != tt.status {
				t.Fatalf("status %d %s, want %d", status, b, tt.status)
			}
			var a map[string]any
			if err := json.Unmarshal(b, &a); err != nil {
				t.Fatal(err)
			}
			if status != 201 {
				if msg, _ := a["error"].(string); msg == "" {
					t.Errorf("error body %s", b)
				}
				return
			}
			for _, f := range tt.fields {
				if a[f] == nil {
					t.Errorf("answer lacks %s: %s", f, b)
				}
			}
		})
	}
}

// TestAnswersAsDocumented: each mode answers its own fields only, a
// direct upload's s3Uri names the bucket and the key that hold the bytes,
// and metadata is the caller's with artifactType filled in.
func TestAnswersAsDocumented(t *testing.T) {
	content := base64.StdEncoding.EncodeToString([]byte("hello"))
	tests := []struct {
		name, body string
		has, lacks []string
		metadata   map[string]any
		direct     bool
	}{
		{"direct", `{"content":"` + content + `","filename":"a b#%.txt","contentType":"text/plain"}`,
			[]string{"fileId", "s3Uri", "url", "filename", "contentType", "size", "metadata", "createdAt"}, []string{"uploadUrl", "s3Key", "expiresIn"},
			map[string]any{"artifactType": "text/plain"}, true},
		{"presigned", `{"requestUploadUrl":true,"filename":"a.txt","contentType":"text/plain","metadata":{"artifactType":"report","tags":["x"]}}`,
			[]string{"fileId", "uploadUrl", "s3Key", "expiresIn", "filename", "contentType", "metadata", "createdAt"}, []string{"s3Uri", "url"},
			map[string]any{"artifactType": "report", "tags": []any{"x"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(t)
			status, b := call(t, "POST", s.URL+"/api/v3/organizations/"+s.Org+"/ai/files", map[string]string{"Authorization": "Bearer " + s.APIKey}, []byte(tt.body))
			var a map[string]any
			if err := json.Unmarshal(b, &a); status != 201 || err != nil {
				t.Fatalf("status %d %s", status, b)
			}
			for _, f := range tt.has {
				if a[f] == nil {
					t.Errorf("answer lacks %s: %s", f, b)
				}
			}
			for _, f := range tt.lacks {
				if _, ok := a[f]; ok {
					t.Errorf("answer has %s, which the doc gives the other mode only: %s", f, b)
				}
			}
			if got, _ := json.Marshal(a["metadata"]); string(got) != string(must(json.Marshal(tt.metadata))) {
				t.Errorf("metadata %s, want %v", got, tt.metadata)
			}
			if !tt.direct {
				return
			}
			uri, _ := a["s3Uri"].(string)
			key, ok := strings.CutPrefix(uri, "s3://"+Bucket+"/")
			if got, stored := s.Object(key); !ok || !stored || string(got) != "hello" {
				t.Errorf("s3Uri %q does not name the object holding the bytes", uri)
			}
			if k, _ := s.FileKey(a["fileId"].(string)); k != key {
				t.Errorf("fileId names key %q, s3Uri %q", k, key)
			}
			if _, stored := s.Object(a["fileId"].(string)); stored {
				t.Error("the bucket holds the bytes under the fileId")
			}
		})
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func TestBucketContract(t *testing.T) {
	data := []byte("hello")
	sum := md5.Sum(data)
	tests := []struct {
		name    string
		header  map[string]string
		body    []byte
		status  int
		success bool
	}{
		{"as signed", map[string]string{"Content-Type": "text/plain"}, data, 200, true},
		{"with a right Content-MD5", map[string]string{"Content-Type": "text/plain", "Content-MD5": base64.StdEncoding.EncodeToString(sum[:])}, data, 200, true},
		{"other bytes with the Content-MD5 of the right ones", map[string]string{"Content-Type": "text/plain", "Content-MD5": base64.StdEncoding.EncodeToString(sum[:])}, []byte("jello"), 400, false},
		{"with a wrong Content-MD5", map[string]string{"Content-Type": "text/plain", "Content-MD5": base64.StdEncoding.EncodeToString(make([]byte, 16))}, data, 400, false},
		{"other Content-Type", map[string]string{"Content-Type": "text/html"}, data, 403, false},
		{"other size", map[string]string{"Content-Type": "text/plain"}, []byte("hello!"), 403, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(t)
			_, b := call(t, "POST", s.URL+"/api/v3/organizations/"+s.Org+"/ai/files", map[string]string{"Authorization": "Bearer " + s.APIKey},
				[]byte(`{"requestUploadUrl":true,"filename":"a.txt","contentType":"text/plain","size":5}`))
			var a struct{ FileID, UploadURL, S3Key string }
			json.Unmarshal(b, &a)
			status, body := call(t, "PUT", a.UploadURL, tt.header, tt.body)
			if status != tt.status {
				t.Errorf("status %d %s, want %d", status, body, tt.status)
			}
			got, ok := s.Object(a.S3Key)
			if ok != tt.success || (ok && !bytes.Equal(got, data)) {
				t.Errorf("stored %v", ok)
			}
			if typ, _ := s.ContentType(a.S3Key); ok && typ != "text/plain" {
				t.Errorf("stored with Content-Type %q, want text/plain", typ)
			}
			if key, _ := s.FileKey(a.FileID); key != a.S3Key {
				t.Errorf("fileId %s names key %q, want %q", a.FileID, key, a.S3Key)
			}
			if status, _ := call(t, "PUT", strings.Split(a.UploadURL, "?")[0], tt.header, tt.body); status != 403 {
				t.Errorf("unsigned upload: %d", status)
			}
		})
	}
}
