package transport

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/filestage/filestage/auth"
)

// PathResourceMetadata is where OAuth clients find the authorization
// servers of /mcp (RFC 9728); the path-suffixed form names the endpoint.
const PathResourceMetadata = "/.well-known/oauth-protected-resource"

// resourceMetadata is the RFC 9728 document.
type resourceMetadata struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers"`
	ScopesSupported        []string `json:"scopes_supported"`
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	ResourceName           string   `json:"resource_name"`
}

// authenticate puts the request's principal in its context: the one its
// bearer token proves, or, with no authentication configured, the local
// one. The token goes no further than here: it is taken off the request,
// so nothing downstream can pass it on. A request's context ends when its
// principal is revoked, which ends its streams and calls.
func (h *HTTP) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.auth == nil {
			noteClient(r.Context(), auth.Local().Name)
			next.ServeHTTP(w, r.WithContext(auth.NewContext(r.Context(), auth.Local())))
			return
		}
		if r.Method == http.MethodOptions {
			// A CORS preflight never carries credentials; mcp-go answers
			// it for the allowed origins, and the real request is checked.
			next.ServeHTTP(w, r)
			return
		}
		token, sent := bearer(r)
		p, err := h.auth.Authenticate(r.Context(), token)
		switch {
		case err == nil:
		case errors.Is(err, auth.ErrNoToken) && !sent:
			h.authFailed(AuthMissingToken)
			h.challenge(w, r, "", "send Authorization: Bearer <token>"+h.howToGetToken(r))
			return
		case errors.Is(err, auth.ErrNoToken), errors.Is(err, auth.ErrInvalidToken):
			h.log.Info("bearer token refused", "reason", err.Error(), "remote", r.RemoteAddr)
			h.authFailed(AuthInvalidToken)
			h.challenge(w, r, "invalid_token", err.Error())
			return
		default:
			// The issuer could not be reached, or is being spared: not
			// necessarily the caller's fault.
			if !errors.Is(err, auth.ErrBusy) {
				h.log.Warn("cannot validate a bearer token", "err", err)
			}
			h.authFailed(AuthUnavailable)
			w.Header().Set("Retry-After", "10")
			http.Error(w, "cannot validate the token now: the authorization server did not answer; try again shortly", http.StatusServiceUnavailable)
			return
		}
		r.Header.Del("Authorization")
		noteClient(r.Context(), p.Name)
		ctx, cancel := context.WithCancel(auth.NewContext(r.Context(), p))
		defer cancel()
		defer context.AfterFunc(p.Revoked(), cancel)()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// bearer is the request's bearer token (RFC 6750 section 2.1; tokens in
// the query or the body are not read, as OAuth 2.1 asks). sent says an
// Authorization header was there at all.
func bearer(r *http.Request) (token string, sent bool) {
	v := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", v != ""
	}
	return strings.TrimSpace(tok), true
}

func (h *HTTP) howToGetToken(r *http.Request) string {
	if u := h.metadataURL(r); u != "" {
		return ": get one from an authorization server listed at " + u
	}
	return ""
}

// metadataURL is where the RFC 9728 metadata of the endpoint r was sent to
// is, when OAuth is on: /sse's for the SSE endpoints, /mcp's for the rest.
func (h *HTTP) metadataURL(r *http.Request) string {
	if h.metadata == nil {
		return ""
	}
	path := PathMCP
	if r.URL.Path == PathSSE || r.URL.Path == PathMessage {
		path = PathSSE
	}
	return h.publicURL + PathResourceMetadata + path
}

// challenge answers 401 with the WWW-Authenticate header of RFC 6750 and,
// with OAuth on, RFC 9728's resource_metadata, which is how an MCP client
// finds where to get a token.
func (h *HTTP) challenge(w http.ResponseWriter, r *http.Request, code, description string) {
	params := []string{}
	if u := h.metadataURL(r); u != "" {
		params = append(params, "resource_metadata="+quote(u))
		if len(h.scopes) > 0 {
			params = append(params, "scope="+quote(strings.Join(h.scopes, " ")))
		}
	} else {
		params = append(params, `realm="filestage"`)
	}
	if code != "" {
		params = append(params, "error="+quote(code), "error_description="+quote(description))
	}
	w.Header().Set("WWW-Authenticate", "Bearer "+strings.Join(params, ", "))
	http.Error(w, "unauthorized: "+description, http.StatusUnauthorized)
}

// insufficientScope refuses a tool call the principal's scopes do not
// cover (RFC 6750 section 3.1), saying which scope it needs.
func (h *HTTP) insufficientScope(w http.ResponseWriter, r *http.Request, id json.RawMessage, tool, scope string) {
	h.scopeChallenge(w, r, scope, "calling "+tool+" needs scope "+scope)
	rpcError(w, http.StatusForbidden, id, mcp.INVALID_REQUEST, "forbidden: calling "+tool+" needs scope "+scope+", which this token does not grant; get a token with it")
}

// scopeChallenge counts a refusal for want of scope and says which scope
// in WWW-Authenticate (RFC 6750 section 3.1); description, when set, is
// its error_description.
func (h *HTTP) scopeChallenge(w http.ResponseWriter, r *http.Request, scope, description string) {
	h.authFailed(AuthInsufficientScope)
	params := []string{`error="insufficient_scope"`, "scope=" + quote(scope)}
	if u := h.metadataURL(r); u != "" {
		params = append(params, "resource_metadata="+quote(u))
	}
	if description != "" {
		params = append(params, "error_description="+quote(description))
	}
	w.Header().Set("WWW-Authenticate", "Bearer "+strings.Join(params, ", "))
}

// allScopes reports whether p holds every tool's scope.
func (h *HTTP) allScopes(p *auth.Principal) bool {
	for _, s := range h.toolScopes {
		if !p.Allows(s) {
			return false
		}
	}
	return true
}

// serveResourceMetadata serves RFC 9728 metadata. It is public, and read
// by browser-based clients from other origins.
func (h *HTTP) serveResourceMetadata(md resourceMetadata) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		if r.Method == http.MethodOptions {
			w.Header().Set("Access-Control-Allow-Methods", "GET")
			w.Header().Set("Access-Control-Allow-Headers", "mcp-protocol-version")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=300")
		json.NewEncoder(w).Encode(md)
	}
}

// quote is an RFC 9110 quoted-string.
func quote(s string) string {
	return strconv.Quote(strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r > 0x7e {
			return ' '
		}
		return r
	}, s))
}

// requireScope refuses principals without scope (none: anyone
// authenticated), with 403 insufficient_scope naming it.
func (h *HTTP) requireScope(scope string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if scope != "" && !auth.FromContext(r.Context()).Allows(scope) {
			h.scopeChallenge(w, r, scope, "")
			http.Error(w, "forbidden: reading the metrics needs scope "+scope+", which this token does not grant", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}
