package quant

import (
	"net/http"

	"github.com/filestage/filestage/providers"
)

// apiError turns a failed API call into a *providers.Error. Quant documents
// its error statuses but not their bodies: the status decides the fix, and
// a message in the body, if there is one, is kept.
func apiError(err error) error {
	return providers.APIError(Name, "upload", err, explain)
}

func explain(herr *providers.HTTPError, e *providers.Error) (what, fix string) {
	switch status := herr.Status; {
	case status == http.StatusBadRequest:
		return "Quant found the request invalid", "Check the file's name and MIME type; Quant lists the content types it accepts in its API reference."
	case status == http.StatusUnauthorized:
		return "Quant did not accept the API token", "Check QUANT_API_TOKEN: it must be a current Quant API token."
	case status == http.StatusForbidden:
		return "access denied", "Check that QUANT_API_TOKEN may use AI files in the organization named by QUANT_ORGANIZATION."
	case status == http.StatusNotFound:
		return "no such organization or endpoint", "Check QUANT_ORGANIZATION, and QUANT_BASE_URL if it is set."
	case status == http.StatusRequestEntityTooLarge:
		e.Slug = "FILE_TOO_LARGE"
		return "the file is too large for Quant", "Stage a smaller file: Quant refused this one even through a presigned upload URL, which is how filestage sends files over 7 MB."
	case status == http.StatusTooManyRequests:
		return "Quant is rate-limiting this token", "Wait a minute and try again."
	case status >= 500:
		return "Quant failed to store the file", "Try again in a few minutes."
	}
	return "unexpected answer", "Try again; if it keeps failing, check QUANT_BASE_URL and QUANT_ORGANIZATION."
}
