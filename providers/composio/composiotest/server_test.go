package composiotest

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/filestage/filestage/internal/testhttp"
)

type answer struct {
	Key   string `json:"key"`
	URL   string `json:"new_presigned_url"`
	Type  string `json:"type"`
	Error *struct {
		Status       int      `json:"status"`
		Slug         string   `json:"slug"`
		Message      string   `json:"message"`
		SuggestedFix string   `json:"suggested_fix"`
		RequestID    string   `json:"request_id"`
		Errors       []string `json:"errors"`
	} `json:"error"`
}

func ask(t *testing.T, s *Server, key string, body string) (int, answer) {
	t.Helper()
	resp, b := testhttp.Do(t, "POST", s.URL+"/api/v3/files/upload/request", map[string]string{"x-api-key": key, "Content-Type": "application/json"}, []byte(body))
	var a answer
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("answer %s: %v", b, err)
	}
	return resp.StatusCode, a
}

func TestAPIContract(t *testing.T) {
	s := New(t)
	sum := md5.Sum([]byte("x"))
	good := `{"toolkit_slug":"gmail","tool_slug":"GMAIL_SEND_EMAIL","filename":"a.txt","mimetype":"text/plain","md5":"` + hex.EncodeToString(sum[:]) + `"}`
	tests := []struct {
		name, key, body string
		status          int
		problem         string
	}{
		{"good", s.APIKey, good, 200, ""},
		{"no key", "", good, 401, ""},
		{"wrong key", "nope", good, 401, ""},
		{"not JSON", s.APIKey, "{", 400, ""},
		{"missing filename", s.APIKey, strings.Replace(good, `"filename":"a.txt",`, "", 1), 400, "filename: Required"},
		{"base64 md5", s.APIKey, strings.Replace(good, hex.EncodeToString(sum[:]), base64.StdEncoding.EncodeToString(sum[:]), 1), 400, "md5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, a := ask(t, s, tt.key, tt.body)
			if status != tt.status {
				t.Fatalf("status %d, want %d", status, tt.status)
			}
			if status == 200 {
				if a.Type != "new" || a.Key == "" || !strings.Contains(a.URL, "X-Amz-Signature=") {
					t.Errorf("answer %+v", a)
				}
				return
			}
			if a.Error == nil || a.Error.Status != status || a.Error.Slug == "" || a.Error.Message == "" || a.Error.RequestID == "" || a.Error.SuggestedFix == "" {
				t.Fatalf("error envelope %+v", a.Error)
			}
			if tt.problem != "" && !strings.Contains(strings.Join(a.Error.Errors, "\n"), tt.problem) {
				t.Errorf("errors %v, want %q", a.Error.Errors, tt.problem)
			}
		})
	}
}

func TestStorageContract(t *testing.T) {
	data := []byte("the bytes")
	sum := md5.Sum(data)
	goodMD5 := base64.StdEncoding.EncodeToString(sum[:])
	tests := []struct {
		name    string
		azure   bool
		change  func(h map[string]string, url *string, body *[]byte)
		status  int
		code    string
		success bool
	}{
		{"as signed", false, func(map[string]string, *string, *[]byte) {}, 200, "", true},
		{"azure as signed", true, func(map[string]string, *string, *[]byte) {}, 201, "", true},
		{"azure without blob type", true, func(h map[string]string, _ *string, _ *[]byte) { delete(h, "x-ms-blob-type") }, 400, "MissingRequiredHeader", false},
		{"no signature", false, func(_ map[string]string, u *string, _ *[]byte) { *u, _, _ = strings.Cut(*u, "?") }, 403, "AccessDenied", false},
		{"other Content-Type", false, func(h map[string]string, _ *string, _ *[]byte) { h["Content-Type"] = "text/html" }, 403, "SignatureDoesNotMatch", false},
		{"no Content-MD5", false, func(h map[string]string, _ *string, _ *[]byte) { delete(h, "Content-MD5") }, 403, "SignatureDoesNotMatch", false},
		{"hex Content-MD5", false, func(h map[string]string, _ *string, _ *[]byte) { h["Content-MD5"] = hex.EncodeToString(sum[:]) }, 400, "InvalidDigest", false},
		{"other bytes", false, func(_ map[string]string, _ *string, b *[]byte) { *b = []byte("the bytez") }, 400, "BadDigest", false},
		{"azure other bytes", true, func(_ map[string]string, _ *string, b *[]byte) { *b = []byte("the bytez") }, 400, "Md5Mismatch", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(t)
			if tt.azure {
				s.SetStorageBackend(Azure)
			}
			_, a := ask(t, s, s.APIKey, `{"toolkit_slug":"gmail","tool_slug":"GMAIL_SEND_EMAIL","filename":"a.txt","mimetype":"text/plain","md5":"`+hex.EncodeToString(sum[:])+`"}`)
			h := map[string]string{"Content-Type": "text/plain", "Content-MD5": goodMD5}
			if tt.azure {
				h["x-ms-blob-type"] = "BlockBlob"
			}
			u, body := a.URL, data
			tt.change(h, &u, &body)
			resp, b := testhttp.Do(t, "PUT", u, h, body)
			if resp.StatusCode != tt.status || !strings.Contains(string(b), tt.code) {
				t.Errorf("answer %d %s, want %d %s", resp.StatusCode, b, tt.status, tt.code)
			}
			if got, ok := s.Object(a.Key); ok != tt.success || (ok && !bytes.Equal(got, data)) {
				t.Errorf("stored %v", ok)
			}
		})
	}
}

func TestDedupe(t *testing.T) {
	s := New(t)
	s.Put("gmail", "GMAIL_SEND_EMAIL", "k/held.txt", []byte("x"))
	sum := md5.Sum([]byte("x"))
	body := `{"toolkit_slug":"gmail","tool_slug":"GMAIL_SEND_EMAIL","filename":"a.txt","mimetype":"text/plain","md5":"` + hex.EncodeToString(sum[:]) + `"}`
	if _, a := ask(t, s, s.APIKey, body); a.Type != "existing" || a.Key != "k/held.txt" {
		t.Errorf("answer %+v, want existing k/held.txt", a)
	}
	// Another tool's bytes are not shared.
	if _, a := ask(t, s, s.APIKey, strings.Replace(body, "GMAIL_SEND_EMAIL", "GMAIL_CREATE_DRAFT", 1)); a.Type != "new" {
		t.Errorf("answer %+v, want new", a)
	}
}

func TestFaultScripts(t *testing.T) {
	s := New(t)
	s.FailNext(418, http.Header{"X-Test": {"1"}}, "teapot")
	s.FailNext(Reset, nil, "")
	resp, b := testhttp.Do(t, "POST", s.URL+"/api/v3/files/upload/request", nil, []byte("{}"))
	if resp.StatusCode != 418 || string(b) != "teapot" || resp.Header.Get("X-Test") != "1" {
		t.Errorf("first answer %d %q", resp.StatusCode, b)
	}
	req, _ := http.NewRequest("POST", s.URL+"/api/v3/files/upload/request", strings.NewReader("{}"))
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Error("the reset answered")
	}
	if n := len(s.Requests()); n != 2 {
		t.Errorf("%d requests recorded, want 2", n)
	}
}
