package source

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

const fuzzInlineCap = 64

// FuzzDataURL opens "data:" followed by arbitrary text. It is decoded or
// refused with a short message that does not repeat the data; what is
// decoded fits the cap and reads the same through Body and At.
func FuzzDataURL(f *testing.F) {
	for _, s := range []string{
		",hello%2C%20world",
		"text/plain;base64,aGVsbG8sIHdvcmxk",
		"text/plain;charset=utf-8;BASE64,aGVs\r\nbG8=",
		"application/pdf;name=q3%20report.pdf;base64,JVBERi0=",
		"application/pdf;filename=\"..%2F..%2Fetc%2Fpasswd\";base64,JVBERi0=",
		"application/octet-stream;base64,-_8=",
		";charset=utf-8,hi",
		"text/plain," + strings.Repeat("x", fuzzInlineCap+1),
		"text/plain;base64," + strings.Repeat("QUFB", 40),
		"text/plain;base64,aGk=%",
		"text/plain;base64,a",
		"nocomma",
		"text/;;;base64,",
		"a\x00b/c;name=%ff%fe,",
		",",
	} {
		f.Add(s)
	}
	o, err := New(Options{MaxInlineBytes: fuzzInlineCap})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		src, err := o.Open(context.Background(), "data:"+s)
		if err != nil {
			if src != nil {
				t.Errorf("a source with the error %v", err)
			}
			fuzzCheckDataError(t, s, err)
			return
		}
		defer src.Body.Close()
		b, err := io.ReadAll(src.Body)
		if err != nil {
			t.Fatal(err)
		}
		if src.Size != int64(len(b)) || len(b) > fuzzInlineCap {
			t.Fatalf("Size %d, read %d bytes, cap %d", src.Size, len(b), fuzzInlineCap)
		}
		if src.At == nil {
			t.Fatal("no At")
		}
		at := make([]byte, len(b)+1)
		if n, err := src.At.ReadAt(at, 0); n != len(b) || err != io.EOF || !bytes.Equal(at[:n], b) {
			t.Fatalf("At read %d bytes (%v), want the %d of Body", n, err, len(b))
		}
		if len(b) > 1 {
			if n, _ := src.At.ReadAt(at[:1], int64(len(b)-1)); n != 1 || at[0] != b[len(b)-1] {
				t.Fatal("At from an offset differs from Body")
			}
		}
		if src.ContentType != "" && !strings.Contains(src.ContentType, "/") {
			t.Errorf("content type %q", src.ContentType)
		}
		if src.Name != "" {
			fuzzCheckName(t, src.Name, false)
		}
	})
}

// fuzzCheckDataError: a refusal is one of the package's errors, short, and
// does not repeat the data (the part after the comma).
func fuzzCheckDataError(t *testing.T, s string, err error) {
	t.Helper()
	if !errors.Is(err, ErrScheme) && !errors.Is(err, ErrInlineTooLarge) {
		t.Errorf("error %v is neither ErrScheme nor ErrInlineTooLarge", err)
	}
	msg := err.Error()
	if len(msg) > 300 {
		t.Errorf("error of %d bytes: %.80q…", len(msg), msg)
	}
	meta, payload, _ := strings.Cut(s, ",")
	// A short payload may match a word of the message by chance, and the
	// media type (which the message may quote) may hold it: neither counts.
	if len(payload) >= 12 && !strings.Contains(meta, payload) && strings.Contains(msg, payload) {
		t.Errorf("error repeats the data: %q", msg)
	}
}
