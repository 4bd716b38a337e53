package providers

import (
	"errors"
	"net/http"
	"strings"
	"syscall"
	"testing"
)

func TestBaseURL(t *testing.T) {
	tests := []struct{ v, want string }{
		{"", "https://api.example.com"},
		{"  http://127.0.0.1:9/x/ ", "http://127.0.0.1:9/x"},
		{"api.example.com", ""},
		{"ftp://h", ""},
		{"https://h/?token=sekrit", ""},
		{"https://h/#sekrit", ""},
		{"https://h/?", ""}, // would make every endpoint a query of "/"
	}
	for _, tt := range tests {
		s := Settings{Getenv: func(string) string { return tt.v }}
		got, err := s.BaseURL("X_BASE_URL", "https://api.example.com")
		if tt.want == "" {
			if err == nil || !strings.Contains(err.Error(), "X_BASE_URL") || strings.Contains(err.Error(), "sekrit") {
				t.Errorf("%q: %q, error %v", tt.v, got, err)
			}
		} else if got != tt.want || err != nil {
			t.Errorf("%q: %q, error %v; want %q", tt.v, got, err, tt.want)
		}
	}
}

func TestBodyMessage(t *testing.T) {
	for body, want := range map[string]string{
		`{"message":"a"}`:                 "a",
		`{"error":"b"}`:                   "b",
		`{"error":{"message":"c"}}`:       "c",
		`{"error":400,"message":"d"}`:     "d",
		`{"error":400}`:                   "",
		`<html>oops</html>`:               "",
		`{"message":"","error":"f"}`:      "f",
		`{"error":{"message":"g"},"x":1}`: "g",
	} {
		if got := BodyMessage([]byte(body)); got != want {
			t.Errorf("%s: %q, want %q", body, got, want)
		}
	}
}

func TestAPIError(t *testing.T) {
	explain := func(what string) func(*HTTPError, *Error) (string, string) {
		return func(*HTTPError, *Error) (string, string) { return what, "fix it" }
	}
	refusal := func(body string, header http.Header) error {
		return &HTTPError{Status: 400, Header: header, Body: []byte(body)}
	}
	tests := []struct {
		err       error
		what      string
		message   string
		requestID string
	}{
		{refusal(`{"message":"bad md5"}`, http.Header{"X-Request-Id": {"r1"}}), "invalid", "call refused with 400 Bad Request: invalid: bad md5", "r1"},
		{refusal("", http.Header{"X-Amzn-Requestid": {"r2"}}), "invalid", "call refused with 400 Bad Request: invalid", "r2"},
		{refusal(`{"error":"bad md5"}`, nil), "", "call refused with 400 Bad Request: bad md5", ""},
		{refusal("", nil), "", "call refused with 400 Bad Request: no error message", ""},
	}
	for _, tt := range tests {
		var e *Error
		if err := APIError("p", "call", tt.err, explain(tt.what)); !errors.As(err, &e) || e.Message != tt.message || e.Fix != "fix it" || e.Status != 400 || e.RequestID != tt.requestID || e.Provider != "p" || !errors.Is(err, tt.err) {
			t.Errorf("%+v, want message %q", err, tt.message)
		}
	}
	cut := errors.New("connection reset")
	if err := APIError("p", "call", cut, explain("")); errors.As(err, new(*Error)) || !errors.Is(err, cut) || err.Error() != "p: call: connection reset" {
		t.Errorf("%v", err)
	}
}

func TestStorageRefusal(t *testing.T) {
	s3 := func(status int, code string) *HTTPError {
		return &HTTPError{Status: status, Header: http.Header{"X-Amz-Request-Id": {"H1"}},
			Body: []byte(`<?xml version="1.0"?><Error><Code>` + code + `</Code><Message>m</Message><RequestId>R1</RequestId></Error>`)}
	}
	tests := []struct {
		backend   string
		err       *HTTPError
		message   string
		fix       string
		requestID string
	}{
		{"s3", s3(403, "AccessDenied"), "S3 refused the upload with 403 Forbidden (AccessDenied: m)", "new URL", "R1"},
		{"s3", s3(400, "BadDigest"), "(BadDigest: m)", "MD5", "R1"},
		{"s3", s3(400, "EntityTooLarge"), "(EntityTooLarge: m)", "smaller file", "R1"},
		{"s3", &HTTPError{Status: 503, Header: http.Header{"X-Amz-Request-Id": {"H1"}}}, "S3 refused the upload with 503 Service Unavailable (no error code)", "Try again", "H1"},
		{"azure_blob_storage", &HTTPError{Status: 400, Header: http.Header{"X-Ms-Request-Id": {"A1"}},
			Body: []byte(`<?xml version="1.0"?><Error><Code>Md5Mismatch</Code><Message>m</Message></Error>`)},
			"Azure Blob Storage refused the upload with 400 Bad Request (Md5Mismatch: m)", "MD5", "A1"},
		{"", &HTTPError{Status: 413}, "the storage refused the upload with 413", "smaller file", ""},
	}
	for _, tt := range tests {
		var e *Error
		err := StorageRefusal("p", tt.backend, tt.err)
		if !errors.As(err, &e) || e.Status != http.StatusBadGateway || e.Provider != "p" || !strings.Contains(e.Message, tt.message) ||
			!strings.Contains(e.Fix, tt.fix) || e.RequestID != tt.requestID || !errors.Is(err, tt.err) {
			t.Errorf("%s %d: %+v, want %q, fix with %q, request ID %q", tt.backend, tt.err.Status, e, tt.message, tt.fix, tt.requestID)
		}
	}
	err := StorageRefusal("p", "s3", syscall.ECONNRESET)
	if errors.As(err, new(*Error)) || !errors.Is(err, syscall.ECONNRESET) || !strings.HasPrefix(err.Error(), "p: uploading to S3: ") {
		t.Errorf("%v", err)
	}
}
