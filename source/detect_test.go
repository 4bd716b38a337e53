package source

import (
	"strings"
	"testing"
)

func TestDetectType(t *testing.T) {
	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
	tests := []struct {
		head              string
		contentType, name string
		want              string
	}{
		{string(png), "application/octet-stream", "", "image/png"},
		{string(png), "image/jpeg", "x.jpg", "image/png"}, // the bytes win
		{"%PDF-1.7\n", "", "", "application/pdf"},
		{"a,b\n1,2\n", "text/csv; charset=utf-8", "", "text/csv"},
		{"a,b\n1,2\n", "text/plain", "x.csv", "text/csv"}, // mimetype recognises CSV itself
		{"# title\n", "", "readme.md", "text/markdown"},
		{"plain words", "", "", "text/plain"},
		{"\x00\x01\x02\x03binary", "", "", "application/octet-stream"},
		{"\x00\x01\x02\x03binary", "application/x-custom", "", "application/x-custom"},
		{"\x00\x01\x02\x03binary", "", "a.wasm", "application/wasm"},
		{`{"a": 1}`, "text/plain", "", "application/json"},
		{"<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>", "", "", "image/svg+xml"},
		{"", "", "", "text/plain"},
	}
	for _, tt := range tests {
		if got := DetectType([]byte(tt.head), tt.contentType, tt.name); got != tt.want {
			t.Errorf("DetectType(%q, %q, %q) = %q, want %q", tt.head, tt.contentType, tt.name, got, tt.want)
		}
	}
}

func TestSanitizeName(t *testing.T) {
	tests := map[string]string{
		"report.pdf":                      "report.pdf",
		"../../etc/passwd":                "passwd",
		`C:\Users\x\evil.exe`:             "evil.exe",
		"..":                              "",
		".hidden":                         "hidden",
		"a\x00b\nc.txt":                   "abc.txt",
		"  spaced name.png  ":             "spaced name.png",
		"what?<>:|*.txt":                  "what.txt",
		"dir/":                            "",
		"\xff\xfeinvalid.txt":             "invalid.txt",
		"résumé.pdf":                      "résumé.pdf",
		"invoice\u202efdp.exe":            "invoicefdp.exe",
		"a\u2066b\u2069.txt":              "ab.txt",
		strings.Repeat("é", 150) + ".pdf": strings.Repeat("é", 98) + ".pdf",
	}
	for in, want := range tests {
		if got := SanitizeName(in); got != want {
			t.Errorf("SanitizeName(%q) = %q, want %q", in, got, want)
		}
		if got := SanitizeName(in); len(got) > MaxNameBytes {
			t.Errorf("SanitizeName(%q) is %d bytes", in, len(got))
		}
	}
}

func TestFileName(t *testing.T) {
	sum := [16]byte{0xde, 0xad, 0xbe, 0xef}
	tests := []struct{ name, mime, want string }{
		{"photo", "image/png", "photo.png"},
		{"photo.jpeg", "image/png", "photo.jpeg"},
		{"", "application/pdf", "file-deadbeef.pdf"},
		{"..", "text/plain", "file-deadbeef.txt"},
		{"", "application/x-unknown-thing", "file-deadbeef"},
	}
	for _, tt := range tests {
		if got := FileName(tt.name, tt.mime, sum); got != tt.want {
			t.Errorf("FileName(%q, %q) = %q, want %q", tt.name, tt.mime, got, tt.want)
		}
	}
}
