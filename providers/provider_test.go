package providers

import "testing"

func TestContentKey(t *testing.T) {
	md5 := [16]byte{0x5d, 0x41}
	tests := []struct {
		req  UploadRequest
		want string
	}{
		{UploadRequest{ToolkitSlug: "gmail", ToolSlug: "GMAIL_SEND_EMAIL", Filename: "a.PDF", MD5: md5}, "gmail/GMAIL_SEND_EMAIL/5d410000000000000000000000000000.pdf"},
		{UploadRequest{ToolkitSlug: "gmail", ToolSlug: "GMAIL_SEND_EMAIL", Filename: "noext", MD5: md5}, "gmail/GMAIL_SEND_EMAIL/5d410000000000000000000000000000"},
		// Each principal's objects under its own prefix: the same bytes
		// are two objects, and one tells nothing of the other.
		{UploadRequest{ToolkitSlug: "gmail", ToolSlug: "GMAIL_SEND_EMAIL", Filename: "a.pdf", MD5: md5, Namespace: "p-0123"}, "p-0123/gmail/GMAIL_SEND_EMAIL/5d410000000000000000000000000000.pdf"},
	}
	for _, tt := range tests {
		if got := ContentKey(tt.req); got != tt.want {
			t.Errorf("ContentKey(%+v) = %s, want %s", tt.req, got, tt.want)
		}
	}
}
