package hydratest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

const (
	redirectURI = "http://127.0.0.1:1/callback"
	audienceA   = "https://mcp.example/a"
	audienceB   = "https://mcp.example/b"
)

var scopes = []string{"openid", "offline_access", "files.read", "files.write"}

// TestFacts checks what the package comment says of the server.
func TestFacts(t *testing.T) {
	checkFacts(t, Start(t))
}

// checkFacts checks what the package comment says of s.
func checkFacts(t *testing.T, s *Server) {
	t.Helper()
	var disco map[string]any
	if code := getJSON(t, s.Public+"/.well-known/openid-configuration", &disco); code != http.StatusOK {
		t.Fatalf("openid-configuration: status %d", code)
	}
	if disco["issuer"] != s.Issuer {
		t.Errorf("discovery issuer %q, want %q", disco["issuer"], s.Issuer)
	}
	if s.Issuer != s.Public+"/" {
		t.Errorf("issuer %q is not the public URL %q with a slash", s.Issuer, s.Public)
	}
	if e, ok := disco["introspection_endpoint"]; ok {
		t.Errorf("discovery advertises introspection_endpoint %v", e)
	}
	if e := disco["registration_endpoint"]; e != s.Public+"/oauth2/register" {
		t.Errorf("registration_endpoint %v, want %s", e, s.Public+"/oauth2/register")
	}
	if m, _ := disco["code_challenge_methods_supported"].([]any); !slices.Contains(m, any("S256")) {
		t.Errorf("code_challenge_methods_supported %v lacks S256", m)
	}
	if code := getJSON(t, s.Public+"/.well-known/oauth-authorization-server", nil); code != http.StatusNotFound {
		t.Errorf("oauth-authorization-server: status %d, want 404", code)
	}
}

func TestClientCredentials(t *testing.T) {
	s := Start(t)
	c := s.NewClient(t, scopes, []string{audienceA, audienceB}, nil, "")
	tok := s.ClientCredentials(t, c, []string{"files.read"}, audienceA)
	header, claims := decodeJWT(t, tok)
	if header["typ"] != "JWT" || header["alg"] != "RS256" || header["kid"] == "" {
		t.Errorf("JWT header %v, want typ JWT, alg RS256 and a kid", header)
	}
	if claims["iss"] != s.Issuer {
		t.Errorf("iss %q, want %q", claims["iss"], s.Issuer)
	}
	if aud := strs(claims["aud"]); !slices.Equal(aud, []string{audienceA}) {
		t.Errorf("aud %v, want [%s]", claims["aud"], audienceA)
	}
	if scp := strs(claims["scp"]); !slices.Equal(scp, []string{"files.read"}) {
		t.Errorf("scp %v, want [files.read]", claims["scp"])
	}
	if _, ok := claims["scope"]; ok {
		t.Errorf("the token has a scope claim: %v", claims["scope"])
	}
	if claims["client_id"] != c.ID || claims["sub"] != c.ID {
		t.Errorf("client_id %v and sub %v, want %s", claims["client_id"], claims["sub"], c.ID)
	}

	// Both audiences, space-separated; no scope, no audience.
	_, claims = decodeJWT(t, s.ClientCredentials(t, c, []string{"files.read", "files.write"}, audienceA+" "+audienceB))
	if aud := strs(claims["aud"]); !slices.Equal(aud, []string{audienceA, audienceB}) {
		t.Errorf("aud %v, want both", claims["aud"])
	}
	if scp := strs(claims["scp"]); !slices.Equal(scp, []string{"files.read", "files.write"}) {
		t.Errorf("scp %v, want both", claims["scp"])
	}
	_, claims = decodeJWT(t, s.ClientCredentials(t, c, nil, ""))
	if aud := strs(claims["aud"]); len(aud) != 0 {
		t.Errorf("aud %v, want none", claims["aud"])
	}
}

func TestAuthCode(t *testing.T) {
	s := Start(t)
	c := s.NewClient(t, scopes, []string{audienceA}, []string{redirectURI, "http://127.0.0.1:2/other"}, "")
	tok := s.AuthCode(t, c, "alice@example.com", []string{"openid", "files.read"}, audienceA)
	_, claims := decodeJWT(t, tok)
	if claims["sub"] != "alice@example.com" {
		t.Errorf("sub %v, want alice@example.com", claims["sub"])
	}
	if claims["iss"] != s.Issuer || claims["client_id"] != c.ID {
		t.Errorf("iss %v, client_id %v; want %s, %s", claims["iss"], claims["client_id"], s.Issuer, c.ID)
	}
	if aud := strs(claims["aud"]); !slices.Equal(aud, []string{audienceA}) {
		t.Errorf("aud %v, want [%s]", claims["aud"], audienceA)
	}
	if scp := strs(claims["scp"]); !slices.Equal(scp, []string{"openid", "files.read"}) {
		t.Errorf("scp %v, want [openid files.read]", claims["scp"])
	}
}

// TestAcceptAuthorization drives, from another goroutine, a flow whose
// authorization URL asks for an RFC 8707 resource rather than an audience,
// as the TypeScript SDK's does.
func TestAcceptAuthorization(t *testing.T) {
	s := Start(t)
	c := s.NewClient(t, scopes, []string{audienceA}, []string{redirectURI}, "")
	verifier := strings.Repeat("v", 43)
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {c.ID},
		"redirect_uri":          {redirectURI},
		"scope":                 {"files.write offline_access"},
		"state":                 {"state-1234567890"},
		"code_challenge":        {challengeOf(verifier)},
		"code_challenge_method": {"S256"},
		"resource":              {audienceB},
	}
	done := make(chan string)
	go func() { done <- s.AcceptAuthorization(t, s.Public+"/oauth2/auth?"+q.Encode(), "bob") }()
	final := <-done
	u, err := url.Parse(final)
	if err != nil || !strings.HasPrefix(final, redirectURI+"?") {
		t.Fatalf("final redirect %q, want to %s", final, redirectURI)
	}
	if u.Query().Get("state") != "state-1234567890" || u.Query().Get("code") == "" {
		t.Fatalf("final redirect %s lacks the state or a code", final)
	}
	tok, err := s.token(c, url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {u.Query().Get("code")},
		"redirect_uri":  {redirectURI},
		"code_verifier": {verifier},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, claims := decodeJWT(t, tok)
	if claims["sub"] != "bob" {
		t.Errorf("sub %v, want bob", claims["sub"])
	}
	if aud := strs(claims["aud"]); !slices.Equal(aud, []string{audienceB}) {
		t.Errorf("aud %v, want the resource [%s]", claims["aud"], audienceB)
	}
	if scp := strs(claims["scp"]); !slices.Equal(scp, []string{"files.write", "offline_access"}) {
		t.Errorf("scp %v, want [files.write offline_access]", claims["scp"])
	}

	// PKCE is enforced: without it Hydra redirects back with an error,
	// which AcceptAuthorizationErr returns as is.
	q.Del("code_challenge")
	q.Del("code_challenge_method")
	final, err = s.AcceptAuthorizationErr(s.Public+"/oauth2/auth?"+q.Encode(), "bob")
	if err != nil {
		t.Fatal(err)
	}
	if u, _ := url.Parse(final); u == nil || u.Query().Get("error") != "invalid_request" || u.Query().Has("code") {
		t.Errorf("without PKCE: redirect %s, want error=invalid_request", final)
	}

	// An unknown client: Hydra's error page, an error.
	if final, err := s.AcceptAuthorizationErr(s.Public+"/oauth2/auth?response_type=code&client_id=nobody&state=state-1234567890", "bob"); err == nil {
		t.Errorf("unknown client: no error, redirect %s", final)
	}
}

func TestOpaque(t *testing.T) {
	s := Start(t)
	c := s.NewClient(t, scopes, []string{audienceA}, []string{redirectURI}, "opaque")
	for _, tok := range []string{
		s.ClientCredentials(t, c, []string{"files.read"}, audienceA),
		s.AuthCode(t, c, "carol", []string{"files.read"}, audienceA),
	} {
		if parts := strings.Split(tok, "."); len(parts) == 3 {
			if _, err := base64.RawURLEncoding.DecodeString(parts[0]); err == nil {
				t.Errorf("opaque token %s looks like a JWT", tok)
			}
		}
		var in struct {
			Active   bool     `json:"active"`
			ClientID string   `json:"client_id"`
			Scope    string   `json:"scope"`
			Aud      []string `json:"aud"`
		}
		resp, err := http.PostForm(s.Admin+"/admin/oauth2/introspect", url.Values{"token": {tok}})
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&in)
		resp.Body.Close()
		if err != nil || !in.Active || in.ClientID != c.ID || in.Scope != "files.read" || !slices.Equal(in.Aud, []string{audienceA}) {
			t.Errorf("introspection: %+v, %v; want active, client %s, scope files.read, aud %s", in, err, c.ID, audienceA)
		}
	}
}

func TestNewClientCleanup(t *testing.T) {
	s := Start(t)
	var id string
	t.Run("create", func(t *testing.T) {
		id = s.NewClient(t, nil, nil, nil, "").ID
		if code := getJSON(t, s.Admin+"/admin/clients/"+id, nil); code != http.StatusOK {
			t.Fatalf("new client: status %d", code)
		}
	})
	if code := getJSON(t, s.Admin+"/admin/clients/"+id, nil); code != http.StatusNotFound {
		t.Errorf("client after its test: status %d, want 404", code)
	}
}

func TestRotateKeys(t *testing.T) {
	s := Start(t)
	checkFacts(t, s)
	c := s.NewClient(t, scopes, nil, nil, "")
	header, _ := decodeJWT(t, s.ClientCredentials(t, c, nil, ""))
	oldKID, _ := header["kid"].(string)
	if !slices.Contains(jwksKIDs(t, s), oldKID) {
		t.Fatalf("kid %s of a token is not in the JWKS %v", oldKID, jwksKIDs(t, s))
	}
	kid := s.RotateKeys(t)
	kids := jwksKIDs(t, s)
	if slices.Contains(kids, oldKID) || !slices.Contains(kids, kid) {
		t.Errorf("JWKS after rotation %v: want %s and not %s", kids, kid, oldKID)
	}
	header, _ = decodeJWT(t, s.ClientCredentials(t, c, nil, ""))
	if header["kid"] != kid {
		t.Errorf("kid %v of a fresh token, want %s", header["kid"], kid)
	}
	// Twice in a row, as a test suite might.
	kid2 := s.RotateKeys(t)
	header, _ = decodeJWT(t, s.ClientCredentials(t, c, nil, ""))
	if kids := jwksKIDs(t, s); header["kid"] != kid2 || slices.Contains(kids, kid) {
		t.Errorf("second rotation: token kid %v, JWKS %v; want %s only", header["kid"], kids, kid2)
	}
}

func TestStartWithoutBinary(t *testing.T) {
	var inner *testing.T
	t.Run("skips", func(t *testing.T) {
		inner = t
		t.Setenv(EnvBin, "")
		t.Setenv("CI", "")
		Start(t)
		t.Error("Start returned without a binary")
	})
	if !inner.Skipped() {
		t.Error("Start did not skip without a binary")
	}
}

// decodeJWT returns a JWT's header and claims, unverified.
func decodeJWT(t *testing.T, tok string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a JWT", tok)
	}
	for i, out := range []*map[string]any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err == nil {
			err = json.Unmarshal(b, out)
		}
		if err != nil {
			t.Fatalf("token %q: part %d: %v", tok, i, err)
		}
	}
	return header, claims
}

// strs is a JSON array of strings.
func strs(v any) []string {
	var out []string
	a, _ := v.([]any)
	for _, e := range a {
		s, _ := e.(string)
		out = append(out, s)
	}
	return out
}

// getJSON GETs u, decodes a 200 answer into out if not nil, and returns the
// status.
func getJSON(t *testing.T, u string, out any) int {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
	}
	return resp.StatusCode
}

func jwksKIDs(t *testing.T, s *Server) []string {
	t.Helper()
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
		} `json:"keys"`
	}
	if code := getJSON(t, s.Public+"/.well-known/jwks.json", &set); code != http.StatusOK {
		t.Fatalf("JWKS: status %d", code)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.KID)
	}
	return kids
}

func challengeOf(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
