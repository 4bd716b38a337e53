package source

import (
	"encoding/hex"
	"mime"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gabriel-vasile/mimetype"
	"golang.org/x/text/secure/precis"
	"golang.org/x/text/unicode/norm"
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

// SanitizeName reduces s to a plain file name: no directories, at most
// MaxNameBytes bytes with its extension kept, and nothing in it a person
// cannot see. Characters that compatibility normalisation (NFKC, which
// some file systems, archivers and platforms apply later) turns into dots
// or separators count as those, and characters that only look like a
// slash become "_", so no later normalisation or reader can take the name
// for a path. What a person sees must be the whole name, so that no
// extension hides behind another: only characters of the PRECIS Freeform
// class (RFC 8264; no controls, format or default-ignorable characters,
// no unassigned code points) are kept, bidi controls and zero-width
// characters go, and every run of blank-looking ones (spaces of any
// width, Hangul fillers, the braille blank) becomes one space. The name
// is NFC, and it neither starts nor ends with a dot or a space. It
// returns "" when nothing is left.
func SanitizeName(s string) string {
	s = nfkcDotsAndSlashes.Replace(s)
	if i := strings.LastIndexAny(s, `/\`); i >= 0 {
		s = s[i+1:]
	}
	// NFC before the filter puts decomposed Hangul (as macOS writes names)
	// back into syllables, which PRECIS admits, where their conjoining
	// jamo alone it does not; NFC after it joins marks that a dropped
	// character stood between.
	s = strings.Map(nameRune, norm.NFC.String(s))
	s = strings.Map(nameRune, norm.NFC.String(s))
	s = checkContext(s)
	s = collapseSpaces(s)
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

// nameProfile is the PRECIS Freeform class, which Unicode's maintained
// tables define, with NFC. It is used to judge characters, not to reject
// whole names: a name with one bad character loses that character.
var nameProfile = precis.NewFreeform(precis.Norm(norm.NFC))

// nameAllowed is the set of characters nameProfile admits anywhere.
var nameAllowed = nameProfile.Allowed()

// nameRune maps one character of a name: -1 drops it.
func nameRune(r rune) rune {
	switch {
	// Bidi controls can make "invoice\u202efdp.exe" display as "invoiceexe.pdf".
	case r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || strings.ContainsRune(`<>:"|?*`, r):
		return -1
	case strings.ContainsRune(slashLookalikes, r):
		return '_'
	case blank(r):
		return ' '
	case ignorable(r):
		return -1
	case nameAllowed.Contains(r) || contextual(r):
		return r
	}
	return -1
}

// blank reports characters that show as empty space: white space of any
// width, and the symbols and fillers that fonts draw blank though Unicode
// does not call them space. A run of them could push a real extension out
// of sight ("invoice.pdf" + 40 × U+3164 + ".exe").
func blank(r rune) bool {
	switch r {
	case '\u2800', // BRAILLE PATTERN BLANK
		'\u115F', '\u1160', '\u3164', '\uFFA0', // Hangul fillers
		'\U00016FE4', // KHITAN SMALL SCRIPT FILLER
		'\U0001D159': // MUSICAL SYMBOL NULL NOTEHEAD
		return true
	}
	return unicode.Is(unicode.White_Space, r)
}

// ignorable reports characters that show as nothing at all
// (Default_Ignorable_Code_Point, which PRECIS refuses too): zero-width
// spaces and joiners, variation selectors, tag characters, the combining
// grapheme joiner, soft hyphens. A joiner goes from emoji sequences too:
// 👨‍👩‍👧 shows as its three people.
func ignorable(r rune) bool {
	return unicode.In(r, unicode.Cf, unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector) ||
		r >= 0xE0000 && r <= 0xE0FFF
}

// contextual reports the visible characters PRECIS admits only in some
// contexts (RFC 5892 appendix A): a middle dot between two l's, Greek
// keraia, Hebrew geresh and gershayim, the katakana middle dot, and the two
// sets of Arabic-Indic digits, not mixed.
func contextual(r rune) bool {
	switch {
	case r == '\u00B7', r == '\u0375', r == '\u05F3', r == '\u05F4', r == '\u30FB':
		return true
	case r >= '\u0660' && r <= '\u0669', r >= '\u06F0' && r <= '\u06F9':
		return true
	}
	return false
}

// checkContext drops the contextual characters of s when PRECIS refuses
// s, which, every other character being one it admits, is for them.
func checkContext(s string) string {
	if ok, err := nameProfile.String(s); err == nil {
		return ok
	}
	s = strings.Map(func(r rune) rune {
		if contextual(r) {
			return -1
		}
		return r
	}, s)
	if ok, err := nameProfile.String(s); err == nil {
		return ok
	}
	return s
}

// collapseSpaces makes every run of spaces one space.
func collapseSpaces(s string) string {
	if !strings.Contains(s, "  ") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		if r == ' ' && space {
			continue
		}
		space = r == ' '
		b.WriteRune(r)
	}
	return b.String()
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
// dot or a space there. SanitizeName leaves no such character but dots
// and spaces; the rest is for names that did not come through it.
func trimmed(r rune) bool {
	return r == '.' || unicode.IsSpace(r) || unicode.In(r, unicode.Cf)
}
