package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/time/rate"
)

const audience = "https://files.example/mcp"

// testIssuer is an authorization server as RFC 8414 describes one: its
// metadata and its published keys, which a test can rotate.
type testIssuer struct {
	*httptest.Server
	mu         sync.Mutex
	keys       []jose.JSONWebKey // private; the public halves are published
	keyFetches atomic.Int32
}

func newIssuer(t *testing.T) *testIssuer {
	is := &testIssuer{}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"issuer": is.URL, "jwks_uri": is.URL + "/jwks", "introspection_endpoint": is.URL + "/introspect"})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		is.keyFetches.Add(1)
		is.mu.Lock()
		defer is.mu.Unlock()
		var set jose.JSONWebKeySet
		for _, k := range is.keys {
			set.Keys = append(set.Keys, k.Public())
		}
		json.NewEncoder(w).Encode(set)
	})
	is.Server = httptest.NewServer(mux)
	t.Cleanup(is.Close)
	is.rotate(t, "k1")
	return is
}

// rotate replaces the published keys by a new RSA key and an EC key.
func (is *testIssuer) rotate(t *testing.T, kid string) {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	is.mu.Lock()
	is.keys = []jose.JSONWebKey{
		{Key: rk, KeyID: kid, Algorithm: string(jose.RS256), Use: "sig"},
		{Key: ek, KeyID: kid + "-ec", Algorithm: string(jose.ES256), Use: "sig"},
	}
	is.mu.Unlock()
}

func (is *testIssuer) key(i int) jose.JSONWebKey {
	is.mu.Lock()
	defer is.mu.Unlock()
	return is.keys[i]
}

// sign makes a compact JWS of claims with key, with a typ header.
func sign(t *testing.T, key jose.JSONWebKey, typ string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithHeader(jose.HeaderKey("kid"), key.KeyID)
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(key.Algorithm), Key: key.Key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// unsigned is a JWT with alg none: header and claims, no signature.
func unsigned(header, claims map[string]any) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c) + "."
}

// hmacWith signs claims with HS256 keyed by the bytes of a public key: the
// algorithm-confusion attack on servers that verify with whatever the
// token's alg says.
func hmacWith(t *testing.T, kid string, pub any, claims map[string]any) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: der}, (&jose.SignerOptions{}).WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := jwt.Signed(s).Claims(claims).Serialize()
	return tok
}

func newOAuth(t *testing.T, is *testIssuer) *OAuth {
	a, err := NewOAuth(OAuthOptions{Issuers: []string{is.URL}, Audiences: []string{audience}, ClientID: "filestage", ClientSecret: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestOAuthTokens(t *testing.T) {
	is := newIssuer(t)
	other := newIssuer(t) // trusted by nobody
	now := time.Now()
	claims := func(change func(map[string]any)) map[string]any {
		c := map[string]any{"iss": is.URL, "sub": "alice", "aud": []string{"https://other.example", audience},
			"exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "nbf": now.Unix(), "scp": []string{ScopeStage}, "client_id": "app"}
		if change != nil {
			change(c)
		}
		return c
	}
	rsaKey, ecKey := is.key(0), is.key(1)
	attacker := other.key(0)
	attacker.KeyID = rsaKey.KeyID // same kid, another key: a re-signed token

	tests := []struct {
		name  string
		token string
		err   string // empty: accepted
	}{
		{"RS256 with scp", sign(t, rsaKey, "JWT", claims(nil)), ""},
		{"ES256 with an RFC 9068 scope string", sign(t, ecKey, "at+jwt", claims(func(c map[string]any) { delete(c, "scp"); c["scope"] = "files:stage files:presign" })), ""},
		{"audience a string", sign(t, rsaKey, "", claims(func(c map[string]any) { c["aud"] = audience })), ""},
		{"client credentials: no sub", sign(t, rsaKey, "", claims(func(c map[string]any) { delete(c, "sub") })), ""},
		{"expired", sign(t, rsaKey, "", claims(func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix() })), "expired"},
		{"expired within the skew", sign(t, rsaKey, "", claims(func(c map[string]any) { c["exp"] = now.Add(-10 * time.Second).Unix() })), ""},
		{"not yet valid", sign(t, rsaKey, "", claims(func(c map[string]any) { c["nbf"] = now.Add(time.Minute).Unix() })), "not valid yet"},
		{"issued in the future", sign(t, rsaKey, "", claims(func(c map[string]any) { c["iat"] = now.Add(time.Minute).Unix() })), "issued in the future"},
		{"no exp", sign(t, rsaKey, "", claims(func(c map[string]any) { delete(c, "exp") })), "no exp"},
		{"wrong audience", sign(t, rsaKey, "", claims(func(c map[string]any) { c["aud"] = "https://other.example" })), "audience"},
		{"no audience", sign(t, rsaKey, "", claims(func(c map[string]any) { delete(c, "aud") })), "audience"},
		{"untrusted issuer", sign(t, other.key(0), "", claims(func(c map[string]any) { c["iss"] = other.URL })), "not trusted"},
		{"issuer with a trailing slash", sign(t, rsaKey, "", claims(func(c map[string]any) { c["iss"] = is.URL + "/" })), "not trusted"},
		{"re-signed with another key", sign(t, attacker, "", claims(nil)), "does not verify"},
		{"unknown kid", sign(t, jose.JSONWebKey{Key: attacker.Key, KeyID: "nope", Algorithm: "RS256"}, "", claims(nil)), "no signing key"},
		{"alg none", unsigned(map[string]any{"alg": "none", "kid": rsaKey.KeyID}, claims(nil)), "allowed algorithm"},
		{"HS256 keyed with the public key", hmacWith(t, rsaKey.KeyID, rsaKey.Public().Key, claims(nil)), "allowed algorithm"},
		{"an ID token's typ", sign(t, rsaKey, "id_token+jwt", claims(nil)), "typ"},
		{"neither sub nor client_id", sign(t, rsaKey, "", claims(func(c map[string]any) { delete(c, "sub"); delete(c, "client_id") })), "neither a subject"},
		{"scp a number", sign(t, rsaKey, "", claims(func(c map[string]any) { c["scp"] = 7 })), "scp"},
		{"signature cut off", strings.TrimRight(sign(t, rsaKey, "", claims(nil)), "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), "does not verify"},
		{"opaque and not introspectable", "opaque-token", "not active"},
	}
	a := newOAuth(t, is)
	intro := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"active": false})
	}))
	defer intro.Close()
	a.o.IntrospectionURL = intro.URL
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := a.Authenticate(t.Context(), tt.token)
			if tt.err == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if p.Namespace == "" || !strings.HasPrefix(p.ID, "oauth:"+is.URL+"#") {
					t.Errorf("principal %+v", p)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted as %+v", p)
			}
			if !errors.Is(err, ErrInvalidToken) || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error %q, want an invalid token error mentioning %q", err, tt.err)
			}
		})
	}
	p, err := a.Authenticate(t.Context(), sign(t, rsaKey, "", claims(nil)))
	if err != nil || !p.Allows(ScopeStage) || p.Allows(ScopePresign) || p.Name != "oauth:app/alice" {
		t.Errorf("scopes of %+v, %v", p, err)
	}
}

// TestOAuthKeyRotation: a token signed with a new key is accepted once the
// issuer publishes it, without a restart; one signed with a key the issuer
// withdrew is refused once the keys are fetched again; made-up key IDs
// cannot make filestage fetch the keys more than its limit allows.
func TestOAuthKeyRotation(t *testing.T) {
	is := newIssuer(t)
	a := newOAuth(t, is)
	claims := map[string]any{"iss": is.URL, "sub": "alice", "aud": audience, "exp": time.Now().Add(time.Hour).Unix()}
	old := sign(t, is.key(0), "", claims)
	if _, err := a.Authenticate(t.Context(), old); err != nil {
		t.Fatal(err)
	}
	is.rotate(t, "k2")
	fresh := sign(t, is.key(0), "", claims)
	if _, err := a.Authenticate(t.Context(), fresh); err != nil {
		t.Fatalf("a token of the new key: %v", err)
	}
	if _, err := a.Authenticate(t.Context(), old); err == nil {
		t.Fatal("a token of the withdrawn key was accepted")
	}
	before := is.keyFetches.Load()
	for i := range 50 {
		k := is.key(0)
		k.KeyID = "made-up-" + string(rune('a'+i%26))
		a.Authenticate(t.Context(), sign(t, k, "", claims))
	}
	if n := is.keyFetches.Load() - before; n > keysRefreshBurst {
		t.Errorf("50 made-up key IDs fetched the keys %d times; the limit is %d per %v", n, keysRefreshBurst, keysRefreshEvery)
	}
	if _, err := a.Authenticate(t.Context(), fresh); err != nil {
		t.Errorf("a good token after the made-up ones: %v", err)
	}
}

// TestIntrospection: opaque tokens are checked with RFC 7662, and answers
// are kept a short while.
func TestIntrospection(t *testing.T) {
	is := newIssuer(t)
	var calls atomic.Int32
	answers := map[string]map[string]any{
		"good":     {"active": true, "sub": "bob", "client_id": "app", "aud": []string{audience}, "scope": "files:presign", "iss": is.URL, "exp": time.Now().Add(time.Hour).Unix(), "token_use": "access_token"},
		"inactive": {"active": false},
		"wrongaud": {"active": true, "sub": "bob", "aud": []string{"https://other.example"}},
		"noaud":    {"active": true, "sub": "bob"},
		"refresh":  {"active": true, "sub": "bob", "aud": []string{audience}, "token_use": "refresh_token"},
		"otheriss": {"active": true, "sub": "bob", "aud": []string{audience}, "iss": "https://evil.example"},
		"expired":  {"active": true, "sub": "bob", "aud": []string{audience}, "exp": time.Now().Add(-time.Hour).Unix()},
	}
	intro := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if id, secret, ok := r.BasicAuth(); !ok || id != "filestage" || secret != "secret" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		r.ParseForm()
		json.NewEncoder(w).Encode(answers[r.PostForm.Get("token")])
	}))
	defer intro.Close()
	a := newOAuth(t, is)
	a.o.IntrospectionURL = intro.URL
	for token := range answers {
		t.Run(token, func(t *testing.T) {
			p, err := a.Authenticate(t.Context(), token)
			if token == "good" {
				if err != nil || p.Name != "oauth:app/bob" || !p.Allows(ScopePresign) || p.Allows(ScopeStage) {
					t.Fatalf("%+v, %v", p, err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("error %v, want an invalid token", err)
			}
		})
	}
	n := calls.Load()
	a.Authenticate(t.Context(), "good")
	a.Authenticate(t.Context(), "inactive")
	if calls.Load() != n {
		t.Error("introspection answers were not kept")
	}
	// Without introspection, an opaque token is refused outright.
	b := newOAuth(t, is)
	b.o.ClientID = ""
	if _, err := b.Authenticate(t.Context(), "good"); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("error %v", err)
	}
}

// TestIssuerMetadata: the issuer's metadata must name the issuer itself.
func TestIssuerMetadata(t *testing.T) {
	liar := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"issuer": "https://someone-else.example", "jwks_uri": "https://someone-else.example/jwks"})
	}))
	defer liar.Close()
	a, err := NewOAuth(OAuthOptions{Issuers: []string{liar.URL}, Audiences: []string{audience}})
	if err != nil {
		t.Fatal(err)
	}
	k := newIssuer(t).key(0)
	_, err = a.Authenticate(t.Context(), sign(t, k, "", map[string]any{"iss": liar.URL, "sub": "x", "aud": audience, "exp": time.Now().Add(time.Hour).Unix()}))
	if err == nil || errors.Is(err, ErrInvalidToken) || !strings.Contains(err.Error(), "RFC 8414") {
		t.Errorf("error %v, want a metadata error that is not the caller's", err)
	}
	for _, bad := range []string{"", "ftp://x", "https://x/?q=1", "https://x/#f", "not a url"} {
		if _, err := NewOAuth(OAuthOptions{Issuers: []string{bad}, Audiences: []string{audience}}); err == nil {
			t.Errorf("issuer %q accepted", bad)
		}
	}
}

// TestIntrospectionBounded: made-up opaque tokens, each new, cost the
// authorization server at most the introspection rate; the rest are told
// to come back (ErrBusy), not refused as invalid.
func TestIntrospectionBounded(t *testing.T) {
	is := newIssuer(t)
	var calls atomic.Int32
	intro := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		json.NewEncoder(w).Encode(map[string]any{"active": false})
	}))
	defer intro.Close()
	a := newOAuth(t, is)
	a.o.IntrospectionURL = intro.URL
	busy := 0
	for i := range 3 * introspectionBurst {
		_, err := a.Authenticate(t.Context(), "made-up-"+strings.Repeat("x", i))
		if errors.Is(err, ErrBusy) {
			busy++
		}
	}
	if n := int(calls.Load()); n > introspectionBurst+introspectionRate || busy == 0 {
		t.Errorf("%d made-up tokens: %d introspections, %d told to wait", 3*introspectionBurst, n, busy)
	}
}

// TestAbandonedKeyFetch: a caller that gives up (its request closed)
// while a key set is fetched does not waste the fetch: the keys are
// refreshed for everyone, even once the refresh budget is spent.
func TestAbandonedKeyFetch(t *testing.T) {
	is := newIssuer(t)
	a := newOAuth(t, is)
	claims := map[string]any{"iss": is.URL, "sub": "alice", "aud": audience, "exp": time.Now().Add(time.Hour).Unix()}
	if _, err := a.Authenticate(t.Context(), sign(t, is.key(0), "", claims)); err != nil {
		t.Fatal(err)
	}
	is.rotate(t, "k2")
	fresh := sign(t, is.key(0), "", claims)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	a.Authenticate(ctx, fresh)
	a.issuers[is.URL].limiter = rate.NewLimiter(0, 0) // no more fetches
	if _, err := a.Authenticate(t.Context(), fresh); err != nil {
		t.Errorf("the new key after an abandoned fetch: %v", err)
	}
}

// TestPrincipalIDs: a token without a subject acts for its client, in an
// ID no subject can take.
func TestPrincipalIDs(t *testing.T) {
	a := newOAuth(t, newIssuer(t))
	byClient, _ := a.principal("https://as.example/", "", "x", nil)
	bySubject, _ := a.principal("https://as.example/", "client:x", "", nil)
	if byClient.ID == bySubject.ID || byClient.Namespace == bySubject.Namespace {
		t.Errorf("client x and subject client:x are one principal: %s", byClient.ID)
	}
}

// TestVerifiedTokensKept: a verified JWT is not verified again while it is
// kept, and stops being kept when it expires.
func TestVerifiedTokensKept(t *testing.T) {
	is := newIssuer(t)
	a := newOAuth(t, is)
	token := sign(t, is.key(0), "", map[string]any{"iss": is.URL, "sub": "alice", "aud": audience, "exp": time.Now().Add(time.Hour).Unix()})
	if _, err := a.Authenticate(t.Context(), token); err != nil {
		t.Fatal(err)
	}
	iss := a.issuers[is.URL]
	iss.mu.Lock()
	iss.keys = &jose.JSONWebKeySet{} // no key could verify it now
	iss.mu.Unlock()
	iss.limiter = rate.NewLimiter(0, 0)
	if _, err := a.Authenticate(t.Context(), token); err != nil {
		t.Errorf("a token verified a moment ago: %v", err)
	}
	a.now = func() time.Time { return time.Now().Add(verifiedTTL + time.Second) }
	if _, err := a.Authenticate(t.Context(), token); err == nil {
		t.Error("a token kept past verifiedTTL was not verified again")
	}
}
