package bench

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/filestage/filestage/auth"
)

// BenchmarkAuthenticate is what proving a caller costs on each request:
// a named token (one hash and a map lookup), the single --auth-token, and
// an RS256 JWT from an OAuth issuer whose keys are cached (the signature
// check dominates).
func BenchmarkAuthenticate(b *testing.B) {
	named, line, _ := auth.NewToken("bench", nil)
	path := filepath.Join(b.TempDir(), "tokens")
	os.WriteFile(path, []byte(line+"\n"), 0o600)

	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	jwk := jose.JSONWebKey{Key: key, KeyID: "k1", Algorithm: string(jose.RS256), Use: "sig"}
	var issuer *httptest.Server
	issuer = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/oauth-authorization-server":
			json.NewEncoder(w).Encode(map[string]string{"issuer": issuer.URL, "jwks_uri": issuer.URL + "/jwks"})
		case "/jwks":
			json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk.Public()}})
		default:
			http.NotFound(w, r)
		}
	}))
	defer issuer.Close()
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", "k1"))
	token, _ := jwt.Signed(signer).Claims(map[string]any{"iss": issuer.URL, "sub": "bench", "aud": "https://files.example/mcp",
		"exp": time.Now().Add(time.Hour).Unix(), "scope": "files:stage files:presign"}).Serialize()

	a, err := auth.New(auth.Options{Token: "single-token-for-the-benchmark", TokensFile: path,
		OAuth: &auth.OAuthOptions{Issuers: []string{issuer.URL}, Audiences: []string{"https://files.example/mcp"}}})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct{ name, token string }{{"named-token", named}, {"auth-token", "single-token-for-the-benchmark"}, {"jwt-rs256", token}} {
		b.Run(bc.name, func(b *testing.B) {
			if _, err := a.Authenticate(b.Context(), bc.token); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.Authenticate(b.Context(), bc.token); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
