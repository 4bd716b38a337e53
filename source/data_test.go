package source

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/url"
	"strings"
	"testing"
)

func TestDataURLs(t *testing.T) {
	f := newOpener(t, Options{MaxInlineBytes: 64})
	hello := base64.StdEncoding.EncodeToString([]byte("hello, world"))
	ok := []struct{ url, body, contentType, name string }{
		{"data:,hello%2C%20world", "hello, world", "", ""},
		{"data:text/plain;base64," + hello, "hello, world", "text/plain", ""},
		{"DATA:text/plain;BASE64," + hello, "hello, world", "text/plain", ""},
		{"data:text/plain;charset=utf-8;base64," + hello, "hello, world", "text/plain", ""},
		{"data:;charset=utf-8,hi", "hi", "text/plain", ""},
		{"data:application/pdf;name=q3%20report.pdf;base64,JVBERi0=", "%PDF-", "application/pdf", "q3 report.pdf"},
		{"data:application/pdf;filename=../../etc/passwd;base64,JVBERi0=", "%PDF-", "application/pdf", "passwd"},
		{"data:text/plain;base64,aGVsbG8sIHdvcmxk", "hello, world", "text/plain", ""},             // no padding needed
		{"data:text/plain;base64,aGk", "hi", "text/plain", ""},                                    // padding left off
		{"data:text/plain;base64,aGk=\n", "hi", "text/plain", ""},                                 // trailing new line
		{"data:text/plain;base64,aGVs\r\nbG8=", "hello", "text/plain", ""},                        // wrapped
		{"data:application/octet-stream;base64,-_8=", "\xfb\xff", "application/octet-stream", ""}, // URL alphabet
		{"data:application/octet-stream;base64,%2B%2F8%3D", "\xfb\xff", "application/octet-stream", ""},
		{"data:text/plain," + strings.Repeat("x", 64), strings.Repeat("x", 64), "text/plain", ""}, // exactly the cap
		{"data:,", "", "", ""},
	}
	for _, tt := range ok {
		src, err := f.Open(context.Background(), tt.url)
		if err != nil {
			t.Errorf("%.40s: %v", tt.url, err)
			continue
		}
		b, _ := io.ReadAll(src.Body)
		if string(b) != tt.body || src.Size != int64(len(tt.body)) || src.ContentType != tt.contentType || src.Name != tt.name || src.At == nil {
			t.Errorf("%.40s: body %q type %q name %q, want %q %q %q", tt.url, b, src.ContentType, src.Name, tt.body, tt.contentType, tt.name)
		}
	}

	big := strings.Repeat("A", 1<<20)
	bad := []struct {
		url  string
		want error
		says string
	}{
		{"data:text/plain;base64", ErrScheme, "comma"},
		{"data:", ErrScheme, "comma"},
		{"data:text/plain;base64,a$b=", ErrScheme, "base64 is not valid"},
		{"data:text/plain;base64,a", ErrScheme, "base64"},
		{"data:text/plain,%zz", ErrScheme, "percent-escape"},
		{"data:text;base64,aGk=", ErrScheme, "type/subtype"},
		{"data:text/;base64,aGk=", ErrScheme, "type/subtype"},
		{"data:text/plain," + strings.Repeat("x", 65), ErrInlineTooLarge, "more than 64 bytes"},
		{"data:text/plain;base64," + base64.StdEncoding.EncodeToString(make([]byte, 65)), ErrInlineTooLarge, "more than 64 bytes"},
		{"data:text/plain;base64," + big, ErrInlineTooLarge, "file://"}, // refused before decoding
		{"data:text/plain," + big, ErrInlineTooLarge, "http(s)"},
		{"data:text/plain;base64," + wrapped(make([]byte, 65)), ErrInlineTooLarge, "more than 64 bytes"},
	}
	for _, tt := range bad {
		_, err := f.Open(context.Background(), tt.url)
		if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("%.40s: %v, want %v saying %q", tt.url, err, tt.want, tt.says)
		}
		if err != nil && len(err.Error()) > 300 {
			t.Errorf("%.40s: the error repeats the data (%d bytes)", tt.url, len(err.Error()))
		}
	}
}

// wrapped is b in base64, in lines of 76 characters as MIME writes them.
func wrapped(b []byte) string {
	s := base64.StdEncoding.EncodeToString(b)
	var out strings.Builder
	for len(s) > 76 {
		out.WriteString(s[:76] + "\r\n")
		s = s[76:]
	}
	return out.String() + s
}

func TestDataURLDefaultCap(t *testing.T) {
	f := newOpener(t, Options{})
	b := make([]byte, DefaultMaxInlineBytes)
	for _, enc := range []string{base64.StdEncoding.EncodeToString(b), wrapped(b), url.QueryEscape(wrapped(b))} {
		if _, err := f.Open(context.Background(), "data:application/octet-stream;base64,"+enc); err != nil {
			t.Errorf("1 MiB: %v", err)
		}
	}
	b = append(b, 0)
	if _, err := f.Open(context.Background(), "data:application/octet-stream;base64,"+base64.StdEncoding.EncodeToString(b)); !errors.Is(err, ErrInlineTooLarge) {
		t.Errorf("1 MiB + 1: %v, want too large", err)
	}
}
