package alloy

import (
	"net/http"

	"github.com/filestage/filestage/providers"
)

// apiError turns a failed API call into a *providers.Error. Alloy
// documents no error body, so the status decides the message and the fix;
// a message in the body, if there is one, is kept.
func apiError(err error) error {
	return providers.APIError(Name, "upload request", err, explain)
}

func explain(herr *providers.HTTPError, _ *providers.Error) (what, fix string) {
	switch status := herr.Status; {
	case status == http.StatusBadRequest:
		return "Alloy found the request invalid", "Check the filename and MIME type; if they look right, the file's MD5 may be malformed."
	case status == http.StatusUnauthorized:
		return "Alloy did not accept the API key", "Check ALLOY_API_KEY: it must be a current Alloy API key."
	case status == http.StatusForbidden:
		return "the API key may not upload files", "Check the API key's permissions in Alloy."
	case status == http.StatusNotFound:
		return "no such endpoint", "Check ALLOY_BASE_URL, and ALLOY_API_VERSION if it is set."
	case status == http.StatusTooManyRequests:
		return "Alloy is rate-limiting this key", "Wait a minute and try again."
	case status >= 500:
		return "Alloy failed", "Try again in a few minutes."
	}
	return "unexpected answer", "Try again; if it keeps failing, check ALLOY_BASE_URL and ALLOY_API_VERSION."
}
