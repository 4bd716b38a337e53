package source

import (
	"crypto/md5"
	"fmt"
	"path"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// shows says how a character shows: as nothing, as blank space, or as
// something a person sees. It is the test's own account, from Unicode's
// properties and the characters fonts are known to draw blank, not the
// code's.
func shows(r rune) (nothing, blankSpace bool) {
	switch {
	case unicode.In(r, unicode.Cc, unicode.Cf, unicode.Bidi_Control, unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector, unicode.Join_Control),
		r >= 0xE0000 && r <= 0xE0FFF, // tags
		r == utf8.RuneError:
		return true, false
	case unicode.In(r, unicode.White_Space, unicode.Zs),
		r == '\u2800',                                              // BRAILLE PATTERN BLANK
		r == '\u115F', r == '\u1160', r == '\u3164', r == '\uFFA0', // Hangul fillers
		r == '\U00016FE4', r == '\U0001D159':
		return false, true
	}
	return false, false
}

// invisible says what in name a person would not see, or "".
func invisible(name string) string {
	blankRun := 0
	for _, r := range name {
		nothing, blankSpace := shows(r)
		if nothing {
			return fmt.Sprintf("invisible %U", r)
		}
		if blankSpace {
			if r != ' ' {
				return fmt.Sprintf("blank %U that is not a space", r)
			}
			if blankRun++; blankRun > 1 {
				return "a run of blanks"
			}
			continue
		}
		blankRun = 0
	}
	return ""
}

// TestNamesShowTheirExtension: whatever hides in a name, the stored name
// shows all of itself, and the extension a person reads last is the one
// the key has.
func TestNamesShowTheirExtension(t *testing.T) {
	fillers := func(r rune, n int) string { return strings.Repeat(string(r), n) }
	tests := []struct {
		in  string
		ext string // the real extension, which the stored name must end in
	}{
		{"invoice.pdf" + fillers('\u3164', 40) + ".exe", ".exe"},
		{"invoice.pdf" + fillers('\uFFA0', 40) + ".exe", ".exe"},
		{"report" + fillers('\u2800', 30) + ".exe", ".exe"},
		{"report.pdf" + fillers('\u2800', 30) + ".exe", ".exe"},
		{"a.pdf\u115F\u1160.exe", ".exe"},
		{"a.pdf" + fillers('\u115F', 20) + fillers('\u1160', 20) + ".scr", ".scr"},
		{"a.pdf" + fillers(' ', 60) + ".exe", ".exe"},
		{"a.pdf" + fillers('\u3000', 30) + ".exe", ".exe"},
		{"a.pdf" + strings.Repeat("\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200A", 5) + ".exe", ".exe"},
		{"a.pdf" + fillers('\u202F', 30) + fillers('\u205F', 30) + ".exe", ".exe"},
		{"a.pdf" + fillers('\u00A0', 40) + ".bat", ".bat"},
		{"a.pdf" + fillers('\u200B', 40) + ".exe", ".exe"},
		{"a.pdf" + strings.Repeat("\u200C\u200D\u200E\u200F", 10) + ".exe", ".exe"},
		{"a.pdf" + fillers('\u180E', 40) + ".exe", ".exe"},
		{"a.pdf" + fillers('\u034F', 40) + ".exe", ".exe"},     // combining grapheme joiner
		{"a.pdf" + fillers('\uFE0F', 40) + ".exe", ".exe"},     // variation selector
		{"a.pdf" + fillers('\U000E0020', 40) + ".exe", ".exe"}, // tag space
		{"a.pdf" + fillers('\U000E0100', 40) + ".exe", ".exe"}, // variation selector supplement
		{"a.pdf" + fillers('\u2028', 10) + fillers('\u2029', 10) + ".exe", ".exe"},
		{"a.pdf" + fillers('\u00AD', 40) + ".exe", ".exe"}, // soft hyphen
		{"a.pdf" + fillers('\u2060', 20) + fillers('\uFEFF', 20) + ".exe", ".exe"},
		{"a.pdf" + fillers('\U0001D159', 20) + ".exe", ".exe"},
		{"a.pdf" + fillers('\U0001D173', 20) + ".exe", ".exe"},
		{"photo\u202Egnp.exe", ".exe"},       // shows as photoexe.png with the RLO
		{"invoice\u202Efdp.scr", ".scr"},     // shows as invoicercs.pdf
		{"x\u2066\u202Egnp\u2069.js", ".js"}, // isolated override
		{"doc\u202Dfdp.exe\u202C", ".exe"},   // LRO and PDF
		{"a\u061C.pdf\u061C.exe", ".exe"},    // Arabic letter mark
		{"\u3164.exe", ".pdf"},               // "exe", a bare name: FileName adds .pdf
		{"x\u3164", ".pdf"},
		{strings.Repeat("\u3164", 100) + ".png", ".pdf"},
		{"a" + fillers('\u2800', 300) + ".exe", ".exe"},
		{"a.pdf" + fillers('\u3164', 300) + ".exe", ".exe"},
	}
	sum := md5.Sum([]byte("x"))
	for _, tt := range tests {
		name := SanitizeName(tt.in)
		key := FileName(tt.in, "application/pdf", sum)
		for _, n := range []string{name, key} {
			if why := invisible(n); why != "" {
				t.Errorf("%+q: %+q holds %s", tt.in, n, why)
			}
		}
		// FileName adds an extension to a name that has none, no more.
		if path.Ext(key) != tt.ext || !strings.HasPrefix(key, name) {
			t.Errorf("%+q: name %+q, key %+q; want the key to be the name, ending in %s", tt.in, name, key, tt.ext)
		}
	}
}

// TestReadableNamesSurvive: names in any script, with accents, emoji and
// the punctuation people use, stay as they are (composed, NFC), or lose
// only what shows as nothing.
func TestReadableNamesSurvive(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Résumé 2024.pdf", "Résumé 2024.pdf"},
		{norm.NFD.String("Résumé 2024.pdf"), "Résumé 2024.pdf"}, // as macOS writes it
		{"日本語のファイル.pdf", "日本語のファイル.pdf"},
		{"ファイル・名前.txt", "ファイル・名前.txt"}, // katakana middle dot, among kana
		{"报告 第3季度.xlsx", "报告 第3季度.xlsx"},
		{"한국어 문서.hwp", "한국어 문서.hwp"},
		{norm.NFD.String("한국어 문서.hwp"), "한국어 문서.hwp"},
		{"Ελληνικά.docx", "Ελληνικά.docx"},
		{"Отчёт за год.pdf", "Отчёт за год.pdf"},
		{"דוח שנתי.pdf", "דוח שנתי.pdf"},
		{"تقرير ٢٠٢٤.pdf", "تقرير ٢٠٢٤.pdf"},
		{"گزارش ۱۴۰۳.pdf", "گزارش ۱۴۰۳.pdf"},
		{"हिन्दी दस्तावेज़.pdf", "हिन्दी दस्तावेज़.pdf"},
		{"col·lecció.pdf", "col·lecció.pdf"}, // Catalan l·l
		{"🎉 party.png", "🎉 party.png"},
		{"👍🏽 approved.png", "👍🏽 approved.png"},
		{"🇫🇷 trip.jpg", "🇫🇷 trip.jpg"},
		{"❤️ love.png", "❤ love.png"},          // the variation selector goes
		{"👨‍👩‍👧 family.jpg", "👨👩👧 family.jpg"}, // so do the joiners
		{"Q3 report (final) [v2] #1 & more!.pdf", "Q3 report (final) [v2] #1 & more!.pdf"},
		{"price €100, 50% off; ok.txt", "price €100, 50% off; ok.txt"},
		{"a  b\u00A0c.txt", "a b c.txt"},
	}
	for _, tt := range tests {
		got := SanitizeName(tt.in)
		if got != tt.want {
			t.Errorf("SanitizeName(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if why := invisible(got); why != "" {
			t.Errorf("%q holds %s", got, why)
		}
	}
}
