package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
)

// Authenticator proves who holds a bearer token, by whichever method is on:
// the single --auth-token, a tokens file of named clients, OAuth 2.1.
type Authenticator struct {
	static    *Principal
	staticSum [32]byte
	Tokens    *Tokens
	OAuth     *OAuth
}

// Options say which methods are on.
type Options struct {
	// Token is the one token of a single-client server.
	Token string
	// TokensFile names the clients of a shared server.
	TokensFile string
	OAuth      *OAuthOptions
}

// New returns the authenticator for o, or nil when no method is on (a
// server trusted to its network, as a loopback one is).
func New(o Options) (*Authenticator, error) {
	if o.Token == "" && o.TokensFile == "" && o.OAuth == nil {
		return nil, nil
	}
	multi := o.TokensFile != "" || o.OAuth != nil
	a := &Authenticator{}
	if o.Token != "" {
		a.static = &Principal{ID: "auth-token", Name: "auth-token"}
		if multi {
			a.static.Namespace = namespace(a.static.ID)
		}
		a.staticSum = sha256.Sum256([]byte(o.Token))
	}
	var err error
	if o.TokensFile != "" {
		if a.Tokens, err = OpenTokens(o.TokensFile, multi); err != nil {
			return nil, err
		}
	}
	if o.OAuth != nil {
		if a.OAuth, err = NewOAuth(*o.OAuth); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// ErrNoToken: the request carried no bearer token.
var ErrNoToken = errors.New("no bearer token")

// Authenticate returns the principal token proves. Errors that match
// ErrInvalidToken or ErrNoToken are the caller's; others (an issuer that
// cannot be reached) are not.
func (a *Authenticator) Authenticate(ctx context.Context, token string) (*Principal, error) {
	if token == "" {
		return nil, ErrNoToken
	}
	if a.static != nil {
		sum := sha256.Sum256([]byte(token))
		if subtle.ConstantTimeCompare(sum[:], a.staticSum[:]) == 1 {
			return a.static, nil
		}
	}
	if a.Tokens != nil {
		if p := a.Tokens.lookup(token); p != nil {
			return p, nil
		}
	}
	if a.OAuth != nil {
		return a.OAuth.Authenticate(ctx, token)
	}
	return nil, invalidToken("the token is not one this server accepts")
}
