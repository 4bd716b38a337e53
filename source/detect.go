package source

import (
	"encoding/hex"
	"mime"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gabriel-vasile/mimetype"
)

// DetectType names a file's MIME type from its first bytes. The server's
// Content-Type and the name's extension are only hints: they decide where
// the bytes are not conclusive (unknown binary, or plain text that may be
// CSV, Markdown, JSON and the like).
func DetectType(head []byte, contentType, name string) string {
	sniffed := mimetype.Detect(head)
	hints := []string{bareType(contentType), bareType(mime.TypeByExtension(path.Ext(name)))}
	switch {
	case sniffed.Is("application/octet-stream"):
		for _, h := range hints {
			if h != "" && h != "application/octet-stream" {
				return h
			}
		}
	case sniffed.Is("text/plain"):
		for _, h := range hints {
			if isText(h) {
				return h
			}
		}
	}
	return bareType(sniffed.String())
}

// bareType drops parameters such as charset: connectors want the bare type.
func bareType(t string) string {
	mt, _, err := mime.ParseMediaType(t)
	if err != nil {
		return ""
	}
	return mt
}

func isText(t string) bool {
	if strings.HasPrefix(t, "text/") {
		return true
	}
	for m := mimetype.Lookup(t); m != nil; m = m.Parent() {
		if m.Is("text/plain") {
			return true
		}
	}
	return false
}

// FileName returns a safe name for stored bytes: name if it survives
// sanitising, else one made from the MD5; with an extension fitting
// mimetype when it has none.
func FileName(name, mimeType string, sum [16]byte) string {
	name = SanitizeName(name)
	if name == "" {
		name = "file-" + hex.EncodeToString(sum[:4])
	}
	if path.Ext(name) == "" {
		name += extensionFor(mimeType)
	}
	return name
}

func extensionFor(mimeType string) string {
	if m := mimetype.Lookup(mimeType); m != nil && m.Extension() != "" {
		return m.Extension()
	}
	if exts, _ := mime.ExtensionsByType(mimeType); len(exts) > 0 {
		return exts[0]
	}
	return ""
}

// MaxNameBytes bounds a stored filename.
const MaxNameBytes = 200

// SanitizeName reduces s to a plain file name: no directories, no control
// characters, no leading or trailing dots or spaces, at most MaxNameBytes
// bytes with its extension kept. It returns "" when nothing is left.
func SanitizeName(s string) string {
	if i := strings.LastIndexAny(s, `/\`); i >= 0 {
		s = s[i+1:]
	}
	s = strings.Map(func(r rune) rune {
		// Bidi controls can make "invoice\u202efdp.exe" display as "invoiceexe.pdf".
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || strings.ContainsRune(`<>:"|?*`, r) {
			return -1
		}
		return r
	}, s)
	s = strings.Trim(s, ". \t")
	if len(s) > MaxNameBytes {
		ext := path.Ext(s)
		if len(ext) > 16 {
			ext = ""
		}
		stem := s[:MaxNameBytes-len(ext)]
		for !utf8.ValidString(stem) {
			stem = stem[:len(stem)-1]
		}
		s = strings.TrimRight(stem, ". ") + ext
	}
	return s
}
