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
		// Sanitised again so that the extension does not take the name
		// over MaxNameBytes: the stem gives way.
		name = SanitizeName(name + extensionFor(mimeType))
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
// characters, no leading or trailing dots, spaces or invisible characters,
// at most MaxNameBytes bytes with its extension kept. Characters that
// compatibility normalisation (NFKC, which some file systems, archivers
// and platforms apply later) turns into dots or separators count as
// those, and characters that only look like a slash become "_", so no
// later normalisation or reader can take the name for a path. It returns
// "" when nothing is left.
func SanitizeName(s string) string {
	s = nfkcDotsAndSlashes.Replace(s)
	if i := strings.LastIndexAny(s, `/\`); i >= 0 {
		s = s[i+1:]
	}
	s = strings.Map(func(r rune) rune {
		switch {
		// Bidi controls can make "invoice\u202efdp.exe" display as "invoiceexe.pdf".
		case r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || strings.ContainsRune(`<>:"|?*`, r):
			return -1
		case strings.ContainsRune(slashLookalikes, r):
			return '_'
		}
		return r
	}, s)
	s = strings.TrimFunc(s, trimmed)
	if len(s) > MaxNameBytes {
		ext := path.Ext(s)
		if len(ext) > 16 {
			ext = ""
		}
		stem := s[:MaxNameBytes-len(ext)]
		for !utf8.ValidString(stem) {
			stem = stem[:len(stem)-1]
		}
		s = strings.TrimRightFunc(stem, trimmed) + ext
	}
	return s
}

// nfkcDotsAndSlashes replaces every character whose NFKC form holds a
// dot, slash or backslash and nothing else that matters (the complete
// list, from Unicode 15's tables) with that form; NFKC composition makes
// no new ones. Compatibility characters that decompose to a digit and a
// dot (⒈, 🄀) are left: they can end a name in a dot, not make a path.
var nfkcDotsAndSlashes = strings.NewReplacer(
	"\uFF0E", ".", // FULLWIDTH FULL STOP
	"\uFE52", ".", // SMALL FULL STOP
	"\u2024", ".", // ONE DOT LEADER
	"\u2025", "..", // TWO DOT LEADER
	"\uFE30", "..", // PRESENTATION FORM FOR VERTICAL TWO DOT LEADER
	"\u2026", "...", // HORIZONTAL ELLIPSIS
	"\uFE19", "...", // PRESENTATION FORM FOR VERTICAL HORIZONTAL ELLIPSIS
	"\uFF0F", "/", // FULLWIDTH SOLIDUS
	"\uFF3C", `\`, // FULLWIDTH REVERSE SOLIDUS
	"\uFE68", `\`, // SMALL REVERSE SOLIDUS
	"\u2100", "a/c", // ACCOUNT OF
	"\u2101", "a/s", // ADDRESSED TO THE SUBJECT
	"\u2105", "c/o", // CARE OF
	"\u2106", "c/u", // CADA UNA
)

// slashLookalikes look like a slash or backslash but normalise to none:
// kept as "_", so that a name cannot display as a path.
const slashLookalikes = "\u2215\u2044\u2216\u29F5\u29F8\u29F9\u2571\u2572"

// trimmed reports the characters a name may not start or end with: dots
// (hidden files, "..", Windows drops trailing ones), white space, and
// invisible format characters (U+200B, U+FEFF ...), which would hide a
// dot or a space there.
func trimmed(r rune) bool {
	return r == '.' || unicode.IsSpace(r) || unicode.In(r, unicode.Cf)
}
