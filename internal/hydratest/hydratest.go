// Package hydratest starts, for each test that asks, an Ory Hydra v2.3.0
// authorization server of its own (the binary .ci/hydra.sh builds), and
// drives it through its REST APIs
// (plain net/http): OAuth clients, the client-credentials and
// authorization-code (PKCE) grants with login and consent accepted through
// the admin API, and signing-key rotation.
//
// Facts about such a Hydra (checked by TestFacts and the other tests):
//
//   - The issuer is the public URL with a trailing slash,
//     "http://127.0.0.1:<public port>/", byte for byte the same in the tokens'
//     iss claim and in /.well-known/openid-configuration (Hydra uses
//     urls.self.issuer as configured; Start sets it with the slash).
//     Server.Issuer holds it.
//   - /.well-known/openid-configuration advertises no introspection_endpoint:
//     introspection is only on the admin API, at Admin+"/admin/oauth2/introspect"
//     (POST, form token=…, no client authentication).
//   - /.well-known/oauth-authorization-server (RFC 8414) is not served (404).
//   - JWT access tokens carry the header typ "JWT" (not "at+jwt", RFC 9068),
//     alg RS256 and the kid of the hydra.jwt.access-token key set.
//   - JWT access tokens carry client_id, and the granted scopes as an array in
//     scp (no scope claim); aud is an array, [] when no audience was granted.
//   - Hydra v2.3.0 ignores RFC 8707's resource parameter; only its own
//     audience parameter sets aud (but see AcceptAuthorizationErr).
//   - Start enforces PKCE, and enables dynamic client registration at
//     Public+"/oauth2/register", advertised as registration_endpoint.
//   - Refresh tokens are issued only when the scope offline_access (or
//     offline) is asked for and granted.
package hydratest

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// EnvBin is the absolute path of the Hydra binary, which .ci/hydra.sh
// builds and exports.
const EnvBin = "FILESTAGE_TEST_HYDRA_BIN"

// AccessTokenKeySet is the key set Hydra signs JWT access tokens with.
const AccessTokenKeySet = "hydra.jwt.access-token"

const howTo = `.ci/run builds it; by hand, from the repository's root:
  source .ci/hydra.sh    # builds Ory Hydra v2.3.0 the first time (minutes) and exports ` + EnvBin + `
  go test ./...`

// skipOrFail skips the test, or fails it when CI=true, so that CI can never
// silently not run it.
func skipOrFail(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why + ". " + howTo)
	}
	t.Skip(why + ". " + howTo)
}

// Server is the Hydra the tests talk to.
type Server struct{ Public, Admin, Issuer string }

//go:embed hydra.env
var settingsFile string

// settings are the KEY=VALUE lines of hydra.env, the Hydra settings every
// instance shares.
func settings() []string {
	var kv []string
	for _, line := range strings.Split(settingsFile, "\n") {
		line = strings.TrimSuffix(line, "\r")
		if line != "" && !strings.HasPrefix(line, "#") {
			kv = append(kv, line)
		}
	}
	return kv
}

// Start starts a Hydra of this test's own, which no other test or package
// uses, and stops it at test cleanup: the binary .ci/hydra.sh built
// (EnvBin), with a sqlite database in t.TempDir(), the settings of
// hydra.env (JWT access tokens, PKCE enforced, ...), free loopback ports,
// and the issuer with a trailing slash. None is shared: test packages run
// at once, and Hydra on sqlite cannot take concurrent writes ("database is
// locked"). Starting takes about 2 s (migration, then serving). Without
// EnvBin the test is skipped, or fails when CI=true, so that CI can never
// silently not run it.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := os.Getenv(EnvBin)
	if bin == "" {
		skipOrFail(t, EnvBin+" is not set, so there is no Hydra binary to start")
	}
	began := time.Now()
	dir := t.TempDir()
	// Hydra's configuration, as environment variables of its keys: this
	// instance's, then the shared ones; the last value of a key wins over
	// the caller's environment.
	env := slices.Concat(os.Environ(), []string{
		"DSN=sqlite://" + filepath.Join(dir, "db.sqlite") + "?_fk=true&_busy_timeout=10000&_journal_mode=WAL",
		"SECRETS_SYSTEM=" + randomString(32),
	}, settings())
	migrate := exec.Command(bin, "migrate", "sql", "up", "-e", "--yes")
	migrate.Env, migrate.Dir = env, dir
	if out, err := migrate.CombinedOutput(); err != nil {
		t.Fatalf("hydra migrate: %v; its output:\n%s", err, out)
	}
	var failures []string
	for attempt := 1; attempt <= 5; attempt++ {
		public, admin, err := freePorts()
		if err != nil {
			t.Fatalf("finding free ports for Hydra: %v", err)
		}
		s := &Server{
			Public: "http://127.0.0.1:" + strconv.Itoa(public),
			Admin:  "http://127.0.0.1:" + strconv.Itoa(admin),
		}
		s.Issuer = s.Public + "/"
		out := new(syncBuffer)
		cmd := exec.Command(bin, "serve", "all", "--dev", "--sqa-opt-out")
		cmd.Env = append(slices.Clip(env),
			"SERVE_PUBLIC_PORT="+strconv.Itoa(public),
			"SERVE_ADMIN_PORT="+strconv.Itoa(admin),
			"URLS_SELF_ISSUER="+s.Issuer,
			"URLS_SELF_PUBLIC="+s.Public+"/",
			"URLS_SELF_ADMIN="+s.Admin+"/",
			"WEBFINGER_OIDC_DISCOVERY_CLIENT_REGISTRATION_URL="+s.Public+"/oauth2/register",
		)
		cmd.Dir, cmd.Stdout, cmd.Stderr = dir, out, out
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting hydra: %v", err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		stop := func() error {
			cmd.Process.Kill()
			return <-exited
		}
		ready, waitErr := waitReady(s, exited, 30*time.Second)
		if ready {
			t.Cleanup(func() { stop() })
			t.Logf("Hydra on %s (public) and %s (admin), started in %v", s.Public, s.Admin, time.Since(began).Round(time.Millisecond))
			return s
		}
		if waitErr == nil { // timed out
			stop()
			t.Fatalf("hydra on ports %d (public) and %d (admin) was not ready after 30 s; its output:\n%s", public, admin, out)
		}
		// Exited, most likely because another process took a port between
		// freePorts and Hydra's listen: try others.
		failures = append(failures, fmt.Sprintf("attempt %d, ports %d (public) and %d (admin): %v; its output:\n%s", attempt, public, admin, waitErr, out))
	}
	t.Fatalf("hydra did not start:\n%s", strings.Join(failures, "\n"))
	return nil
}

// freePorts returns two distinct loopback ports that nothing listened on a
// moment ago.
func freePorts() (public, admin int, err error) {
	var ports [2]int
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, 0, err
		}
		// Closed only after both are taken, so that they differ.
		defer l.Close()
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports[0], ports[1], nil
}

// waitReady polls /health/ready on s's public and admin ports until both
// answer 200 (true), the process exits (false and its exit error, never
// nil), or timeout passes (false, nil).
func waitReady(s *Server, exited <-chan error, timeout time.Duration) (bool, error) {
	poll := &http.Client{Timeout: time.Second}
	isReady := func(base string) bool {
		resp, err := poll.Get(base + "/health/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	deadline := time.Now().Add(timeout)
	for {
		select {
		case err := <-exited:
			if err == nil {
				err = errors.New("exited with status 0")
			}
			return false, err
		default:
		}
		if isReady(s.Public) && isReady(s.Admin) {
			return true, nil
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// syncBuffer collects a process's output, which may be read while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Client is an OAuth client registered at the server.
type Client struct{ ID, Secret string }

// httpClient is for the server's APIs; the authorization flows make their own.
var httpClient = &http.Client{Timeout: 30 * time.Second}

// NewClient creates an OAuth client (client_secret_basic, grant types
// client_credentials, authorization_code, refresh_token; response type code;
// redirect URIs given; scope = space-joined scopes; audience = the allowed
// audiences) and deletes it at test cleanup. tokenStrategy "" (server
// default, jwt) or "opaque" (Hydra v2 per-client access_token_strategy).
func (s *Server) NewClient(t testing.TB, scopes, audiences, redirectURIs []string, tokenStrategy string) Client {
	t.Helper()
	body := map[string]any{
		"client_name":                "filestage test " + t.Name(),
		"grant_types":                []string{"client_credentials", "authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"redirect_uris":              nonNil(redirectURIs),
		"scope":                      strings.Join(scopes, " "),
		"audience":                   nonNil(audiences),
		"token_endpoint_auth_method": "client_secret_basic",
	}
	if tokenStrategy != "" {
		body["access_token_strategy"] = tokenStrategy
	}
	var created struct {
		ID     string `json:"client_id"`
		Secret string `json:"client_secret"`
	}
	if err := s.admin(http.MethodPost, "/admin/clients", body, &created, http.StatusCreated); err != nil {
		t.Fatalf("creating OAuth client: %v", err)
	}
	if created.ID == "" || created.Secret == "" {
		t.Fatalf("creating OAuth client: no client_id or client_secret in Hydra's answer")
	}
	t.Cleanup(func() {
		if err := s.admin(http.MethodDelete, "/admin/clients/"+url.PathEscape(created.ID), nil, nil, http.StatusNoContent); err != nil {
			t.Logf("deleting OAuth client: %v", err)
		}
	})
	return Client{ID: created.ID, Secret: created.Secret}
}

// ClientCredentials gets an access token with the client-credentials grant,
// asking for the scopes and the audience (Hydra's audience parameter,
// space-separated if several; empty means none).
func (s *Server) ClientCredentials(t testing.TB, c Client, scopes []string, audience string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	if audience != "" {
		form.Set("audience", audience)
	}
	tok, err := s.token(c, form)
	if err != nil {
		t.Fatalf("client-credentials grant: %v", err)
	}
	return tok
}

// AuthCode runs the authorization-code grant with PKCE (S256) for subject:
// it asks the public /oauth2/auth for a code for c's first redirect URI, the
// scopes and the audience (Hydra's audience parameter, space-separated if
// several; empty means none), accepts login and consent through the admin
// API (AcceptAuthorizationErr), and exchanges the code with its verifier at
// /oauth2/token. It returns the access token.
func (s *Server) AuthCode(t testing.TB, c Client, subject string, scopes []string, audience string) string {
	t.Helper()
	var registered struct {
		RedirectURIs []string `json:"redirect_uris"`
	}
	if err := s.admin(http.MethodGet, "/admin/clients/"+url.PathEscape(c.ID), nil, &registered, http.StatusOK); err != nil {
		t.Fatalf("reading OAuth client: %v", err)
	}
	if len(registered.RedirectURIs) == 0 {
		t.Fatalf("OAuth client %s has no redirect URI", c.ID)
	}
	redirectURI := registered.RedirectURIs[0]
	verifier := randomString(32)
	challenge := sha256.Sum256([]byte(verifier))
	state := randomString(16)
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {c.ID},
		"redirect_uri":          {redirectURI},
		"scope":                 {strings.Join(scopes, " ")},
		"state":                 {state},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(challenge[:])},
		"code_challenge_method": {"S256"},
	}
	if audience != "" {
		q.Set("audience", audience)
	}
	final, err := s.AcceptAuthorizationErr(s.Public+"/oauth2/auth?"+q.Encode(), subject)
	if err != nil {
		t.Fatalf("authorization-code grant: %v", err)
	}
	u, err := url.Parse(final)
	if err != nil {
		t.Fatalf("authorization-code grant: redirect %q: %v", final, err)
	}
	got := u.Query()
	switch {
	case got.Get("error") != "":
		t.Fatalf("authorization-code grant: redirected with error %s: %s", got.Get("error"), got.Get("error_description"))
	case !strings.HasPrefix(final, redirectURI):
		t.Fatalf("authorization-code grant: redirected to %s, not to %s", final, redirectURI)
	case got.Get("state") != state:
		t.Fatalf("authorization-code grant: state %q in the redirect, want %q", got.Get("state"), state)
	case got.Get("code") == "":
		t.Fatalf("authorization-code grant: no code in the redirect %s", final)
	}
	tok, err := s.token(c, url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {got.Get("code")},
		"redirect_uri":  {redirectURI},
		"code_verifier": {verifier},
	})
	if err != nil {
		t.Fatalf("authorization-code grant: exchanging the code: %v", err)
	}
	return tok
}

// AcceptAuthorization drives a login/consent for an authorization URL some
// other client (the TypeScript SDK) produced; see AcceptAuthorizationErr.
// It reports a failure, and a redirect that carries an error, with t.Errorf,
// never t.Fatalf, so it may be called from a goroutine other than the
// test's; it then returns what it got ("" when there was no redirect).
func (s *Server) AcceptAuthorization(t testing.TB, authURL, subject string) string {
	t.Helper()
	final, err := s.AcceptAuthorizationErr(authURL, subject)
	if err != nil {
		t.Errorf("accepting authorization: %v", err)
		return final
	}
	if u, err := url.Parse(final); err == nil && u.Query().Get("error") != "" {
		t.Errorf("accepting authorization: redirected with error %s: %s", u.Query().Get("error"), u.Query().Get("error_description"))
	}
	return final
}

// AcceptAuthorizationErr drives a login/consent for a full /oauth2/auth URL:
// it follows Hydra's redirects itself (keeping Hydra's cookies), accepts the
// login request as subject and the consent request granting every scope and
// audience asked for, and returns the final redirect URL: the client's
// redirect_uri with code and state, or with error and error_description if
// Hydra refused there (which is not an error of this function). Hydra
// ignores RFC 8707's resource parameter, so each resource in authURL is
// granted as an audience too, as a server implementing it would. An error is
// returned when Hydra answers otherwise, or redirects to its error page.
// It uses nothing of a test and may be called from any goroutine.
func (s *Server) AcceptAuthorizationErr(authURL, subject string) (string, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return "", err
	}
	browser := &http.Client{
		Jar:     jar,
		Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	public, err := url.Parse(s.Public)
	if err != nil {
		return "", err
	}
	next := authURL
	for range 10 {
		resp, err := browser.Get(next)
		if err != nil {
			return "", err
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		loc, err := resp.Location()
		if err != nil {
			return "", fmt.Errorf("GET %s: %s, not a redirect: %s", next, resp.Status, bytes.TrimSpace(body))
		}
		q := loc.Query()
		switch {
		case q.Has("login_challenge"):
			next, err = s.acceptLogin(q.Get("login_challenge"), subject)
		case q.Has("consent_challenge"):
			next, err = s.acceptConsent(q.Get("consent_challenge"))
		case loc.Host == public.Host && loc.Path == "/oauth2/fallbacks/error":
			return "", fmt.Errorf("Hydra refused: %s: %s (%s)", q.Get("error"), q.Get("error_description"), q.Get("error_hint"))
		case loc.Host == public.Host && strings.HasPrefix(loc.Path, "/oauth2/"):
			next = loc.String()
		default:
			return loc.String(), nil
		}
		if err != nil {
			return "", err
		}
	}
	return "", fmt.Errorf("authorizing %s: too many redirects", authURL)
}

// acceptLogin accepts a login request as subject and returns where to go on.
func (s *Server) acceptLogin(challenge, subject string) (string, error) {
	var accepted struct {
		RedirectTo string `json:"redirect_to"`
	}
	err := s.admin(http.MethodPut, "/admin/oauth2/auth/requests/login/accept?login_challenge="+url.QueryEscape(challenge),
		map[string]any{"subject": subject, "remember": false}, &accepted, http.StatusOK)
	if err != nil {
		return "", fmt.Errorf("accepting login: %w", err)
	}
	return accepted.RedirectTo, nil
}

// acceptConsent grants everything a consent request asks for, plus each
// resource of its authorization request as an audience, and returns where to
// go on.
func (s *Server) acceptConsent(challenge string) (string, error) {
	var req struct {
		RequestedScope    []string `json:"requested_scope"`
		RequestedAudience []string `json:"requested_access_token_audience"`
		RequestURL        string   `json:"request_url"`
	}
	err := s.admin(http.MethodGet, "/admin/oauth2/auth/requests/consent?consent_challenge="+url.QueryEscape(challenge), nil, &req, http.StatusOK)
	if err != nil {
		return "", fmt.Errorf("reading consent request: %w", err)
	}
	audience := nonNil(req.RequestedAudience)
	if u, err := url.Parse(req.RequestURL); err == nil {
		for _, r := range u.Query()["resource"] {
			if !slices.Contains(audience, r) {
				audience = append(audience, r)
			}
		}
	}
	var accepted struct {
		RedirectTo string `json:"redirect_to"`
	}
	err = s.admin(http.MethodPut, "/admin/oauth2/auth/requests/consent/accept?consent_challenge="+url.QueryEscape(challenge),
		map[string]any{
			"grant_scope":                 nonNil(req.RequestedScope),
			"grant_access_token_audience": audience,
			"remember":                    false,
		}, &accepted, http.StatusOK)
	if err != nil {
		return "", fmt.Errorf("accepting consent: %w", err)
	}
	return accepted.RedirectTo, nil
}

// RotateKeys creates a new signing key in Hydra's access-token key set
// (hydra.jwt.access-token) and deletes the previous ones, so tokens signed
// before no longer verify against the published JWKS. Hydra signs with the
// newest key of the set from then on. It returns the new key's kid.
func (s *Server) RotateKeys(t testing.TB) string {
	t.Helper()
	path := "/admin/keys/" + AccessTokenKeySet
	var old struct {
		Keys []struct {
			KID string `json:"kid"`
		} `json:"keys"`
	}
	// 404: the set does not exist yet (Hydra makes it on first use).
	if err := s.admin(http.MethodGet, path, nil, &old, http.StatusOK, http.StatusNotFound); err != nil {
		t.Fatalf("rotating keys: %v", err)
	}
	kid := "filestage-test-" + randomString(8)
	if err := s.admin(http.MethodPost, path, map[string]string{"alg": "RS256", "use": "sig", "kid": kid}, nil, http.StatusCreated); err != nil {
		t.Fatalf("rotating keys: creating a key: %v", err)
	}
	for _, k := range old.Keys {
		if k.KID == kid {
			continue
		}
		if err := s.admin(http.MethodDelete, path+"/"+url.PathEscape(k.KID), nil, nil, http.StatusNoContent); err != nil {
			t.Fatalf("rotating keys: deleting key %s: %v", k.KID, err)
		}
	}
	return kid
}

// admin calls the admin API with body as JSON (none if nil), and decodes the
// answer into out (if not nil) when its status is one of ok.
func (s *Server) admin(method, path string, body, out any, ok ...int) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.Admin+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: %v", method, path, err)
	}
	if !slices.Contains(ok, resp.StatusCode) {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
	}
	if out != nil && resp.StatusCode < 300 && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decoding %s: %v", method, path, b, err)
		}
	}
	return nil
}

// token posts a token request authenticated as c (client_secret_basic,
// whose user and password are form-encoded first, RFC 6749 2.3.1) and returns
// the access token.
func (s *Server) token(c Client, form url.Values) (string, error) {
	req, err := http.NewRequest(http.MethodPost, s.Public+"/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	resp, err := httpClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("POST /oauth2/token: %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(b, &tok); err != nil {
		return "", fmt.Errorf("POST /oauth2/token: decoding %s: %v", b, err)
	}
	if tok.AccessToken == "" {
		return "", errors.New("POST /oauth2/token: no access_token in " + string(b))
	}
	return tok.AccessToken, nil
}

// randomString is n random bytes in hex.
func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// nonNil makes a nil slice encode as [] rather than null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
