package auth

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/time/rate"
)

// signatureAlgorithms are the JWS algorithms an access token may use: the
// asymmetric ones. HMAC would let anyone holding the published key sign,
// and "none" signs nothing.
var signatureAlgorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

// Clock skew allowed on exp, nbf and iat.
const leeway = 30 * time.Second

// Key sets are fetched again when older than keysMaxAge, or when a token
// names a key the set lacks (the issuer rotated its keys), but at most
// keysRefreshBurst times per keysRefreshEvery: a caller sending made-up key
// IDs must not make filestage hammer the issuer.
const (
	keysMaxAge       = 10 * time.Minute
	keysRefreshEvery = 10 * time.Second
	keysRefreshBurst = 3
	metadataMaxBytes = 1 << 20
	fetchTimeout     = 10 * time.Second
	introspectionTTL = 30 * time.Second
	// A verified JWT is not verified again for this long (a signature
	// check costs some 60 µs), unless its issuer withdraws a key.
	verifiedTTL = time.Minute
	cacheKeep   = 10000
	// Introspection requests per second, and their burst.
	introspectionRate  = 50
	introspectionBurst = 100
)

// OAuthOptions configure the OAuth 2.1 resource server.
type OAuthOptions struct {
	// Issuers are the authorization servers trusted, by issuer identifier.
	Issuers []string
	// Audiences: one of them must be among a token's audiences (RFC
	// 8707), the canonical URLs of this server's MCP endpoints.
	Audiences []string
	// Introspection, when ClientID is set, checks opaque tokens (RFC 7662)
	// at URL, or at the first issuer's advertised endpoint.
	IntrospectionURL, ClientID, ClientSecret string
	// HTTP reaches the issuers; nil means a client with a 10 s timeout.
	HTTP *http.Client
}

// OAuth validates access tokens from trusted issuers.
type OAuth struct {
	o       OAuthOptions
	http    *http.Client
	issuers map[string]*issuer
	// now is the clock tokens are checked against; tests move it.
	now func() time.Time

	// checked keeps the answers for tokens seen lately, by their hash: a
	// verified JWT until it expires (at most verifiedTTL), an
	// introspection's answer introspectionTTL.
	checked tokenCache
	// introURLMu guards introURL, found once from the metadata.
	introURLMu sync.Mutex
	introURL   string
	// introLimit bounds the introspection requests made for tokens not
	// cached: made-up tokens must not turn filestage into a flood on the
	// authorization server.
	introLimit *rate.Limiter
}

// tokenCache is answers about tokens by the tokens' SHA-256, each until it
// expires; at most cacheKeep are kept.
type tokenCache struct {
	mu sync.Mutex
	m  map[[32]byte]checked
}

type checked struct {
	p       *Principal
	err     error
	expires time.Time
}

func (c *tokenCache) get(key [32]byte, now time.Time) (checked, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[key]
	return v, ok && now.Before(v.expires)
}

func (c *tokenCache) clear() {
	c.mu.Lock()
	clear(c.m)
	c.mu.Unlock()
}

func (c *tokenCache) put(key [32]byte, v checked, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[[32]byte]checked{}
	}
	if len(c.m) >= cacheKeep {
		for k, old := range c.m {
			if !now.Before(old.expires) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= cacheKeep {
			clear(c.m)
		}
	}
	c.m[key] = v
}

// issuer is one trusted authorization server and its cached keys.
type issuer struct {
	id      string
	limiter *rate.Limiter

	// withdrawn is called when a fetch finds a key gone: tokens it
	// verified must be checked again.
	withdrawn func()
	// fetchMu serializes fetches, and guards meta; mu guards the keys.
	fetchMu sync.Mutex
	meta    *serverMetadata
	mu      sync.Mutex
	keys    *jose.JSONWebKeySet
	fetched time.Time
}

// serverMetadata is what filestage reads of RFC 8414 / OpenID metadata.
type serverMetadata struct {
	Issuer                string `json:"issuer"`
	JWKSURI               string `json:"jwks_uri"`
	IntrospectionEndpoint string `json:"introspection_endpoint"`
}

// NewOAuth returns a validator for o; nothing is fetched until a token
// arrives, so an issuer that is down at start-up delays nothing.
func NewOAuth(o OAuthOptions) (*OAuth, error) {
	if len(o.Issuers) == 0 {
		return nil, errors.New("oauth: no issuer")
	}
	if len(o.Audiences) == 0 {
		return nil, errors.New("oauth: no audience")
	}
	a := &OAuth{o: o, http: o.HTTP, issuers: map[string]*issuer{}, now: time.Now,
		introLimit: rate.NewLimiter(introspectionRate, introspectionBurst)}
	if a.http == nil {
		a.http = &http.Client{Timeout: 10 * time.Second}
	}
	for _, id := range o.Issuers {
		u, err := url.Parse(id)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("oauth issuer %q: want an https URL with no query or fragment (RFC 8414)", id)
		}
		a.issuers[id] = &issuer{id: id, limiter: rate.NewLimiter(rate.Every(keysRefreshEvery), keysRefreshBurst), withdrawn: a.checked.clear}
	}
	return a, nil
}

// Issuers are the trusted issuers, as configured.
func (a *OAuth) Issuers() []string { return slices.Clone(a.o.Issuers) }

// Audiences are the audiences of which tokens must carry one.
func (a *OAuth) Audiences() []string { return slices.Clone(a.o.Audiences) }

// errInvalid is a token refused; its text says why, for the
// WWW-Authenticate error_description and the log.
type errInvalid struct{ why string }

func (e errInvalid) Error() string { return e.why }

func invalidToken(format string, args ...any) error {
	return errInvalid{fmt.Sprintf(format, args...)}
}

// ErrBusy: the token cannot be checked now, for too many were being
// checked; the caller may try again shortly.
var ErrBusy = errors.New("too many tokens to introspect at once; try again shortly")

// ErrInvalidToken matches every error of a token refused (as opposed to
// an issuer that could not be reached).
var ErrInvalidToken = errors.New("invalid token")

func (e errInvalid) Is(target error) bool { return target == ErrInvalidToken }

// accessClaims are the claims read besides the registered ones. Hydra puts
// scopes in an scp array, RFC 9068 in a space-separated scope string.
type accessClaims struct {
	Scope    string          `json:"scope"`
	SCP      json.RawMessage `json:"scp"`
	ClientID string          `json:"client_id"`
}

// Authenticate validates token: a JWT from a trusted issuer, or an opaque
// token its issuer's introspection endpoint vouches for.
func (a *OAuth) Authenticate(ctx context.Context, token string) (*Principal, error) {
	key := sha256.Sum256([]byte(token))
	if c, ok := a.checked.get(key, a.now()); ok {
		return c.p, c.err
	}
	tok, err := jwt.ParseSigned(token, signatureAlgorithms)
	if err != nil {
		if strings.Count(token, ".") == 2 {
			// A JWT, but not one signed with an allowed algorithm.
			return nil, invalidToken("the token is not a JWT signed with an allowed algorithm (%v)", err)
		}
		if a.o.ClientID == "" || strings.HasPrefix(token, tokenPrefix) {
			// A named token the tokens file no longer holds is not sent
			// to the issuer.
			return nil, invalidToken("the token is neither one of this server's named tokens nor a JWT access token")
		}
		return a.introspect(ctx, key, token)
	}
	h := tok.Headers[0]
	// RFC 9068 access tokens say at+jwt; Hydra's say JWT. Others (an
	// ID token's, a logout token's) are not access tokens.
	typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
	switch strings.ToLower(typ) {
	case "", "jwt", "at+jwt", "application/at+jwt":
	default:
		return nil, invalidToken("the token's typ %q is not an access token's", typ)
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, invalidToken("the token's claims cannot be read: %v", err)
	}
	iss, ok := a.issuers[unverified.Issuer]
	if !ok {
		return nil, invalidToken("the token's issuer %q is not trusted here", unverified.Issuer)
	}
	keys, err := iss.keysFor(ctx, a.http, h.KeyID)
	if err != nil {
		return nil, err
	}
	var claims jwt.Claims
	var extra accessClaims
	verified := false
	for _, k := range keys {
		if k.Algorithm != "" && k.Algorithm != h.Algorithm {
			continue
		}
		if tok.Claims(k.Key, &claims, &extra) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, invalidToken("the token's signature does not verify with the issuer's published keys")
	}
	if claims.Expiry == nil {
		return nil, invalidToken("the token has no exp")
	}
	if err := claims.ValidateWithLeeway(jwt.Expected{Issuer: iss.id, AnyAudience: a.o.Audiences, Time: a.now()}, leeway); err != nil {
		return nil, invalidToken("%v (this server's audiences are %s)", err, strings.Join(a.o.Audiences, ", "))
	}
	scopes, err := readScopes(extra)
	if err != nil {
		return nil, err
	}
	p, err := a.principal(iss.id, claims.Subject, extra.ClientID, scopes)
	if err == nil {
		now := a.now()
		expires := now.Add(verifiedTTL)
		if e := claims.Expiry.Time().Add(leeway); e.Before(expires) {
			expires = e
		}
		a.checked.put(key, checked{p: p, expires: expires}, now)
	}
	return p, err
}

func readScopes(c accessClaims) ([]string, error) {
	scopes := strings.Fields(c.Scope)
	if len(c.SCP) > 0 && string(c.SCP) != "null" {
		var list []string
		if err := json.Unmarshal(c.SCP, &list); err != nil {
			var one string
			if json.Unmarshal(c.SCP, &one) != nil {
				return nil, invalidToken("the token's scp is neither a list of strings nor a string")
			}
			list = strings.Fields(one)
		}
		scopes = append(scopes, list...)
	}
	return scopes, nil
}

func (a *OAuth) principal(iss, sub, clientID string, scopes []string) (*Principal, error) {
	if sub == "" && clientID == "" {
		return nil, invalidToken("the token names neither a subject (sub) nor a client (client_id)")
	}
	// The issuer's subject; a token without one acts for its client, in
	// an ID no subject can spell.
	id := "oauth:" + iss + "#sub:" + sub
	name := "oauth:" + sub
	switch {
	case sub == "":
		id, name = "oauth:"+iss+"#client:"+clientID, "oauth:client:"+clientID
	case clientID != "" && clientID != sub:
		name = "oauth:" + clientID + "/" + sub
	}
	p := &Principal{ID: id, Name: name, scopes: scopes}
	if p.scopes == nil {
		p.scopes = []string{}
	}
	// OAuth serves many principals: each keeps to its own keys.
	p.Namespace = namespace(p.ID)
	return p, nil
}

// keysFor returns the issuer's signing keys that may have signed a token
// naming kid: fetched again when the set is old or lacks kid, as often as
// the limiter allows. Callers whose key is cached never wait for a fetch,
// and a fetch is not the caller's to cancel: one a client started and
// abandoned still refreshes the keys for everyone.
func (is *issuer) keysFor(ctx context.Context, c *http.Client, kid string) ([]jose.JSONWebKey, error) {
	found, fresh := is.find(kid)
	if len(found) == 0 || !fresh {
		is.fetchMu.Lock()
		// Another caller may have fetched while this one waited.
		if found, fresh = is.find(kid); (len(found) == 0 || !fresh) && is.limiter.Allow() {
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
			err := is.fetchKeys(fctx, c)
			cancel()
			if err != nil && len(found) == 0 {
				is.fetchMu.Unlock()
				return nil, err
			}
			found, _ = is.find(kid)
		}
		is.fetchMu.Unlock()
	}
	if len(found) == 0 {
		return nil, invalidToken("the issuer publishes no signing key %q", kid)
	}
	return found, nil
}

// find returns the cached signing keys that may be kid, and whether the set
// is younger than keysMaxAge.
func (is *issuer) find(kid string) (keys []jose.JSONWebKey, fresh bool) {
	is.mu.Lock()
	defer is.mu.Unlock()
	if is.keys == nil {
		return nil, false
	}
	for _, k := range is.keys.Keys {
		if (kid == "" || k.KeyID == kid) && (k.Use == "" || k.Use == "sig") && k.IsPublic() {
			keys = append(keys, k)
		}
	}
	return keys, time.Since(is.fetched) <= keysMaxAge
}

// fetchKeys fetches the key set; is.fetchMu is held.
func (is *issuer) fetchKeys(ctx context.Context, c *http.Client) error {
	if is.meta == nil {
		meta, err := fetchMetadata(ctx, c, is.id)
		if err != nil {
			return err
		}
		is.meta = meta
	}
	var set jose.JSONWebKeySet
	if err := getJSON(ctx, c, is.meta.JWKSURI, &set); err != nil {
		return fmt.Errorf("oauth issuer %s: fetching its keys: %w", is.id, err)
	}
	is.mu.Lock()
	gone := false
	if is.keys != nil {
		for _, k := range is.keys.Keys {
			gone = gone || len(set.Key(k.KeyID)) == 0
		}
	}
	is.keys, is.fetched = &set, time.Now()
	is.mu.Unlock()
	if gone {
		is.withdrawn()
	}
	return nil
}

// fetchMetadata reads the issuer's RFC 8414 metadata, or its OpenID
// Connect discovery document, and checks that it speaks for the issuer.
func fetchMetadata(ctx context.Context, c *http.Client, id string) (*serverMetadata, error) {
	u, _ := url.Parse(id)
	path := strings.TrimSuffix(u.Path, "/")
	var errs []error
	for _, well := range []string{
		// RFC 8414 section 3: the well-known part goes before the path.
		u.Scheme + "://" + u.Host + "/.well-known/oauth-authorization-server" + path,
		// OpenID Connect Discovery: after it.
		u.Scheme + "://" + u.Host + path + "/.well-known/openid-configuration",
	} {
		var meta serverMetadata
		if err := getJSON(ctx, c, well, &meta); err != nil {
			errs = append(errs, err)
			continue
		}
		if meta.Issuer != id {
			return nil, fmt.Errorf("oauth issuer %s: its metadata at %s names issuer %q (RFC 8414 section 3.3 wants the same)", id, well, meta.Issuer)
		}
		if meta.JWKSURI == "" {
			return nil, fmt.Errorf("oauth issuer %s: its metadata at %s has no jwks_uri", id, well)
		}
		return &meta, nil
	}
	return nil, fmt.Errorf("oauth issuer %s: no metadata: %w", id, errors.Join(errs...))
}

func getJSON(ctx context.Context, c *http.Client, u string, dst any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, metadataMaxBytes)).Decode(dst); err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	return nil
}

// introspection is what filestage reads of an RFC 7662 answer.
type introspection struct {
	Active   bool             `json:"active"`
	Scope    string           `json:"scope"`
	ClientID string           `json:"client_id"`
	Sub      string           `json:"sub"`
	Aud      jwt.Audience     `json:"aud"`
	Iss      string           `json:"iss"`
	Exp      *jwt.NumericDate `json:"exp"`
	Nbf      *jwt.NumericDate `json:"nbf"`
	// Hydra says which kind of token it was.
	TokenUse  string `json:"token_use"`
	TokenType string `json:"token_type"`
}

// introspect asks the issuer about an opaque token. Answers are kept a
// short while, so that a client's every request does not cost the issuer
// one; a revoked token is refused within introspectionTTL.
func (a *OAuth) introspect(ctx context.Context, key [32]byte, token string) (*Principal, error) {
	if !a.introLimit.Allow() {
		return nil, ErrBusy
	}
	p, ttl, err := a.introspectNow(ctx, token)
	if err != nil && !errors.Is(err, ErrInvalidToken) {
		return nil, err
	}
	now := a.now()
	a.checked.put(key, checked{p: p, err: err, expires: now.Add(ttl)}, now)
	return p, err
}

func (a *OAuth) introspectNow(ctx context.Context, token string) (*Principal, time.Duration, error) {
	endpoint, err := a.introspectionURL(ctx)
	if err != nil {
		return nil, 0, err
	}
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(url.QueryEscape(a.o.ClientID), url.QueryEscape(a.o.ClientSecret))
	resp, err := a.http.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("oauth introspection: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("oauth introspection at %s: %s", endpoint, resp.Status)
	}
	var in introspection
	if err := json.NewDecoder(io.LimitReader(resp.Body, metadataMaxBytes)).Decode(&in); err != nil {
		return nil, 0, fmt.Errorf("oauth introspection at %s: %w", endpoint, err)
	}
	ttl := introspectionTTL
	now := a.now()
	switch {
	case !in.Active:
		return nil, ttl, invalidToken("the token is not active (expired, revoked or unknown to the issuer)")
	case in.TokenUse != "" && in.TokenUse != "access_token", strings.EqualFold(in.TokenType, "refresh_token"):
		return nil, ttl, invalidToken("the token is not an access token")
	case in.Iss != "" && a.issuers[in.Iss] == nil:
		return nil, ttl, invalidToken("the token's issuer %q is not trusted here", in.Iss)
	case !slices.ContainsFunc(a.o.Audiences, func(aud string) bool { return slices.Contains(in.Aud, aud) }):
		return nil, ttl, invalidToken("the token's audience %v includes none of this server's, %s", []string(in.Aud), strings.Join(a.o.Audiences, ", "))
	case in.Exp != nil && now.After(in.Exp.Time().Add(leeway)):
		return nil, ttl, invalidToken("the token has expired")
	case in.Nbf != nil && now.Add(leeway).Before(in.Nbf.Time()):
		return nil, ttl, invalidToken("the token is not valid yet")
	}
	if in.Exp != nil {
		ttl = min(ttl, in.Exp.Time().Sub(now))
	}
	iss := in.Iss
	if iss == "" {
		iss = a.o.Issuers[0]
	}
	p, err := a.principal(iss, in.Sub, in.ClientID, strings.Fields(in.Scope))
	return p, ttl, err
}

func (a *OAuth) introspectionURL(ctx context.Context) (string, error) {
	if a.o.IntrospectionURL != "" {
		return a.o.IntrospectionURL, nil
	}
	a.introURLMu.Lock()
	defer a.introURLMu.Unlock()
	if a.introURL == "" {
		meta, err := fetchMetadata(ctx, a.http, a.o.Issuers[0])
		if err != nil {
			return "", err
		}
		if meta.IntrospectionEndpoint == "" {
			return "", fmt.Errorf("oauth issuer %s advertises no introspection_endpoint: set --oauth-introspection-url", a.o.Issuers[0])
		}
		a.introURL = meta.IntrospectionEndpoint
	}
	return a.introURL, nil
}
