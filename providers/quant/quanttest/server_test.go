package quanttest

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/filestage/filestage/providers/internal/fakeplatform"
)

func call(t *testing.T, method, url string, header map[string]string, body []byte) (int, []byte) {
	t.Helper()
	resp, b := fakeplatform.Call(t, method, url, header, body)
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
			got, ok := s.Object(a.FileID)
			if ok != tt.success || (ok && !bytes.Equal(got, data)) {
				t.Errorf("stored %v", ok)
			}
			if status, _ := call(t, "PUT", strings.Split(a.UploadURL, "?")[0], tt.header, tt.body); status != 403 {
				t.Errorf("unsigned upload: %d", status)
			}
		})
	}
}
