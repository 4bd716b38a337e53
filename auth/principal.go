// Package auth knows who is calling: the principals filestage serves, the
// named tokens and OAuth 2.1 access tokens that prove them, and what each
// may do. The transport authenticates each request and puts its principal
// in the request's context; everything else only reads it from there.
package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
)

// Default scope names, one per tool.
const (
	ScopeStage   = "files:stage"
	ScopePresign = "files:presign"
)

// Limits bound one principal's calls, on top of the server-wide limits;
// zero means the server's per-client default.
type Limits struct {
	// Stages caps the principal's stage calls running at once.
	Stages int
	// CallsPerMinute caps the principal's tool calls per minute.
	CallsPerMinute int
}

// Principal is who a request acts for. Sessions, calls and stored objects
// belong to one principal, whatever token proved it.
type Principal struct {
	// ID identifies the principal across tokens: a session belongs to it.
	ID string
	// Name is what logs show; never a token.
	Name string
	// Namespace prefixes the keys of the principal's objects, so that
	// callers cannot learn of each other's files. Empty where only one
	// principal can exist.
	Namespace string
	Limits    Limits
	// scopes granted; nil grants every scope.
	scopes []string
	// revoked ends when the principal's credentials are withdrawn (a
	// named token removed from its file): its sessions and calls end.
	revoked context.Context
}

// Local is the principal of a server with no authentication: the one user
// of a stdio server, or of an HTTP server trusted to its network.
func Local() *Principal { return &Principal{ID: "local", Name: "local"} }

// Allows reports whether the principal holds scope.
func (p *Principal) Allows(scope string) bool {
	return p.scopes == nil || slices.Contains(p.scopes, scope)
}

// Scopes are the scopes granted; nil means every scope.
func (p *Principal) Scopes() []string { return slices.Clone(p.scopes) }

// Revoked is done once the principal's credentials are withdrawn.
func (p *Principal) Revoked() context.Context {
	if p.revoked == nil {
		return context.Background()
	}
	return p.revoked
}

// namespace is the key prefix of principal id: a fixed-length digest, so
// that no name or OAuth subject, however spelled, can reach into another
// principal's keys or form a key the stores refuse.
func namespace(id string) string {
	sum := sha256.Sum256([]byte(id))
	return "p-" + hex.EncodeToString(sum[:16])
}

type ctxKey struct{}

// NewContext returns ctx carrying p.
func NewContext(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext is the principal ctx carries, or Local() when none: only the
// transport puts one there, and a request it did not authenticate is one
// of a server without authentication.
func FromContext(ctx context.Context) *Principal {
	if p, ok := ctx.Value(ctxKey{}).(*Principal); ok && p != nil {
		return p
	}
	return Local()
}
