// Package redact makes URLs safe to show: a presigned URL's query is a
// credential, and so is userinfo.
package redact

import (
	"net/url"
	"strings"
)

// URL returns raw without userinfo, query or fragment.
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		// Unparseable: keep only what precedes any query.
		raw, _, _ = strings.Cut(raw, "?")
		return raw
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	return u.String()
}
