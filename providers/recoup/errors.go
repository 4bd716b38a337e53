package recoup

import (
	"net/http"

	"github.com/filestage/filestage/providers"
)

// apiError turns a failed API call into a *providers.Error carrying the
// message of Recoup's documented error body, {error: <status>, message}.
func apiError(err error) error {
	return providers.APIError(Name, "staging", err, func(herr *providers.HTTPError, _ *providers.Error) (string, string) {
		return "", fix(herr.Status) // the body's message says what went wrong
	})
}

func fix(status int) string {
	switch {
	case status == http.StatusBadRequest:
		return "Pass a publicly reachable http(s) URL, and the action's slug in UPPERCASE_SNAKE_CASE as toolSlug (e.g. LINKEDIN_CREATE_LINKED_IN_POST)."
	case status == http.StatusUnauthorized:
		return "Check RECOUP_API_KEY: it must be a current Recoup API key."
	case status == http.StatusBadGateway:
		return "Recoup could not fetch the URL or store the file: check that the URL is publicly reachable without a login, then try again."
	case status == http.StatusTooManyRequests:
		return "Recoup is rate-limiting this key; wait a minute and try again."
	case status >= 500:
		return "Recoup failed; try again in a few minutes."
	}
	return "Try again; if it keeps failing, check RECOUP_BASE_URL and RECOUP_API_KEY."
}
