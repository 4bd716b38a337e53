package auth

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/filestage/filestage/internal/hydratest"
)

// TestHydraTokenTimes checks tokens of a real authorization server (Ory
// Hydra) against a clock moved past their expiry and before their issue:
// both refused, and accepted again at the right time.
func TestHydraTokenTimes(t *testing.T) {
	hs := hydratest.Start(t)
	scopes := []string{ScopeStage, ScopePresign}
	c := hs.NewClient(t, scopes, []string{audience}, []string{"http://127.0.0.1:9/cb"}, "")
	token := hs.ClientCredentials(t, c, scopes, audience)
	for _, tc := range []struct {
		name string
		skew time.Duration
		err  string
	}{
		{"now", 0, ""},
		{"within the skew of expiry", time.Hour + 20*time.Second, ""},
		{"past expiry", 2 * time.Hour, "expired"},
		{"before issue", -time.Hour, "not valid yet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A validator of its own: verified tokens are kept.
			a, err := NewOAuth(OAuthOptions{Issuers: []string{hs.Issuer}, Audiences: []string{audience}})
			if err != nil {
				t.Fatal(err)
			}
			a.now = func() time.Time { return time.Now().Add(tc.skew) }
			p, err := a.Authenticate(t.Context(), token)
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.err == "" && (p.ID != "oauth:"+hs.Issuer+"#sub:"+c.ID || !p.Allows(ScopeStage) || !p.Allows(ScopePresign)):
				t.Errorf("principal %+v", p)
			case tc.err != "" && (!errors.Is(err, ErrInvalidToken) || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("error %v, want one mentioning %q", err, tc.err)
			}
		})
	}
}
