package composio

import (
	"cmp"
	"encoding/json"
	"net/http"

	"github.com/filestage/filestage/providers"
)

// envelope is Composio's error body for every documented failure status;
// providers.APIError reads its message.
type envelope struct {
	Error struct {
		Slug         string   `json:"slug"`
		RequestID    string   `json:"request_id"`
		SuggestedFix string   `json:"suggested_fix"`
		Errors       []string `json:"errors"`
	} `json:"error"`
}

// apiError turns a failed API call into a *providers.Error carrying what
// Composio's envelope says, so the tool error can pass it on.
func apiError(err error) error {
	return providers.APIError(Name, "upload request", err, func(herr *providers.HTTPError, e *providers.Error) (string, string) {
		var env envelope
		_ = json.Unmarshal(herr.Body, &env)
		e.Slug, e.Errors = env.Error.Slug, env.Error.Errors
		e.RequestID = cmp.Or(env.Error.RequestID, e.RequestID)
		return "", cmp.Or(env.Error.SuggestedFix, defaultFix(herr.Status))
	})
}

func defaultFix(status int) string {
	switch {
	case status == http.StatusBadRequest:
		return "Check the toolkit and tool slugs, the filename, the MIME type and the MD5."
	case status == http.StatusUnauthorized:
		return "Check COMPOSIO_API_KEY: it must be a current API key of your Composio project."
	case status == http.StatusForbidden:
		return "The API key may not upload files for this toolkit or tool; check the project and the key's permissions."
	case status == http.StatusNotFound:
		return "Check the toolkit and tool slugs, and COMPOSIO_BASE_URL if it is set."
	case status == http.StatusGone:
		return "Composio retired this API; update filestage."
	case status == http.StatusTooManyRequests:
		return "Composio is rate-limiting this key; wait a minute and try again."
	case status == http.StatusNotImplemented:
		return "Composio does not support this upload; try another toolkit or tool, or another provider."
	case status >= 500:
		return "Composio failed; try again in a few minutes."
	}
	return "Try again; if it keeps failing, check the provider's settings."
}
