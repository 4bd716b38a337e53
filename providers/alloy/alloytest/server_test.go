package alloytest

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/filestage/filestage/internal/testhttp"
)

func TestAPIContract(t *testing.T) {
	sum := md5.Sum([]byte("x"))
	body := func(md5 string) string {
		return `{"filename":"document.pdf","mimeType":"application/pdf","md5":"` + md5 + `"}`
	}
	const auth = "Bearer KEY" // KEY: the fake's own key
	tests := []struct {
		name, auth, version, body string
		status                    int
	}{
		{"hex md5", auth, "2025-09", body(hex.EncodeToString(sum[:])), 200},
		{"base64 md5", auth, "2025-09", body(base64.StdEncoding.EncodeToString(sum[:])), 200},
		{"no auth", "", "2025-09", body(hex.EncodeToString(sum[:])), 401},
		{"key without Bearer", "KEY", "2025-09", body(hex.EncodeToString(sum[:])), 401},
		{"no version", auth, "", body(hex.EncodeToString(sum[:])), 400},
		{"short md5", auth, "2025-09", body("abc"), 400},
		{"no md5", auth, "2025-09", `{"filename":"a","mimeType":"b"}`, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(t)
			resp, b := testhttp.Do(t, "POST", s.URL+"/connectors/files/upload/request",
				map[string]string{"Authorization": strings.Replace(tt.auth, "KEY", s.APIKey, 1), "x-api-version": tt.version}, []byte(tt.body))
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.status != 200 {
				return
			}
			var a struct {
				PresignedURL struct{ MD5, PresignedURL, Type, S3Key string } `json:"presignedUrl"`
			}
			json.Unmarshal(b, &a)
			if a.PresignedURL.MD5 != base64.StdEncoding.EncodeToString(sum[:]) || a.PresignedURL.Type != "new" || !strings.HasSuffix(a.PresignedURL.S3Key, "_document.pdf") {
				t.Errorf("answer %+v", a)
			}
			// Upload as signed; the bucket keeps it.
			presp, _ := testhttp.Do(t, "PUT", a.PresignedURL.PresignedURL, map[string]string{"Content-Type": "application/pdf", "Content-MD5": a.PresignedURL.MD5}, []byte("x"))
			if got, ok := s.Object(a.PresignedURL.S3Key); presp.StatusCode != 200 || !ok || string(got) != "x" {
				t.Errorf("upload %d, stored %v", presp.StatusCode, ok)
			}
		})
	}
}
