package tools

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"mime"
	"regexp"
	"strings"

	"github.com/filestage/filestage/source"
)

var (
	toolSlugPattern    = regexp.MustCompile(`^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$`)
	toolkitSlugPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
)

const maxSlug = 128

func checkToolSlug(field, s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", invalid(field, "is required", "Pass the action slug the file is for, e.g. GMAIL_SEND_EMAIL.")
	case len(s) > maxSlug:
		return "", invalid(field, fmt.Sprintf("is longer than %d characters", maxSlug), "Pass the action slug, e.g. GMAIL_SEND_EMAIL.")
	case !toolSlugPattern.MatchString(s) && toolSlugPattern.MatchString(strings.ToUpper(s)):
		return "", invalid(field, fmt.Sprintf("must be UPPERCASE_SNAKE_CASE, got %q", s), fmt.Sprintf("Pass %q.", strings.ToUpper(s)))
	case !toolSlugPattern.MatchString(s):
		return "", invalid(field, fmt.Sprintf("must be an UPPERCASE_SNAKE_CASE action slug, got %q", s), "Pass the action slug, e.g. GMAIL_SEND_EMAIL or SLACK_UPLOAD_FILE.")
	}
	return s, nil
}

// checkToolkitSlug lower-cases s: slugs are case-insensitive names.
func checkToolkitSlug(field, s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	switch {
	case s == "":
		return "", invalid(field, "is required", "Pass the app's slug, e.g. gmail, slack or github.")
	case len(s) > maxSlug || !toolkitSlugPattern.MatchString(s):
		return "", invalid(field, fmt.Sprintf("must be a slug of letters, digits, _ and -, got %q", s), "Pass the app's slug, e.g. gmail, slack or github.")
	}
	return s, nil
}

// toolkitOf is the toolkit a tool slug belongs to by convention:
// GMAIL_SEND_EMAIL belongs to gmail.
func toolkitOf(toolSlug string) string {
	first, _, _ := strings.Cut(toolSlug, "_")
	return strings.ToLower(first)
}

func checkFilename(field, s string, required bool) (string, error) {
	if strings.TrimSpace(s) == "" {
		if required {
			return "", invalid(field, "is required", "Pass the file's name with its extension, e.g. quarterly_report.pdf.")
		}
		return "", nil
	}
	n := source.SanitizeName(s)
	if n == "" {
		return "", invalid(field, fmt.Sprintf("%q has no usable name left once directories, control characters and leading dots are removed", s), "Pass a plain file name with its extension, e.g. quarterly_report.pdf.")
	}
	return n, nil
}

// checkMimetype returns the bare media type (parameters dropped).
func checkMimetype(field, s string) (string, error) {
	if strings.TrimSpace(s) == "" {
		return "", invalid(field, "is required", "Pass the file's MIME type, e.g. application/pdf or image/png.")
	}
	mt, _, err := mime.ParseMediaType(s)
	if err != nil || !strings.Contains(mt, "/") {
		return "", invalid(field, fmt.Sprintf("%q is not a MIME type", s), "Pass a type/subtype such as application/pdf, image/png or text/csv.")
	}
	return mt, nil
}

// parseMD5 accepts 32 hex characters or the base64 of the 16 digest bytes,
// the two forms the platforms document.
func parseMD5(field, s string) ([16]byte, error) {
	var sum [16]byte
	s = strings.TrimSpace(s)
	if s == "" {
		return sum, invalid(field, "is required", "Pass the file's MD5 as 32 hex characters (the output of md5sum).")
	}
	if len(s) == 32 {
		if _, err := hex.Decode(sum[:], []byte(s)); err == nil {
			return sum, nil
		}
	}
	// Only the exact encoding of 16 bytes: the decoder would also skip new
	// lines and ignore non-zero bits in the last character.
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == len(sum) && enc.EncodeToString(b) == s {
			copy(sum[:], b)
			return sum, nil
		}
	}
	return sum, invalid(field, fmt.Sprintf("%q is neither 32 hex characters nor base64 of 16 bytes", s), "Pass the MD5 as printed by md5sum (32 hex characters), or as base64 as in a Content-MD5 header.")
}
