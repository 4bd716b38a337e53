package config

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// env is kv as the environment, with HOME set as on a user's machine
// unless kv says otherwise (HOME: "" unsets it).
func env(kv map[string]string) func(string) string {
	return func(k string) string {
		if v, ok := kv[k]; ok || k != "HOME" {
			return v
		}
		return "/home/u"
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(t *testing.T, c Config)
	}{
		{"defaults", nil, map[string]string{"HOME": "/home/u"}, func(t *testing.T, c Config) {
			if c.Command != CmdServe || c.Transport != TransportStdio || c.Listen != "127.0.0.1:0" || c.Provider != "local" ||
				c.MaxBytes != 512<<20 || c.AllowPrivateURLs || c.FetchTimeout != 15*time.Minute || c.DrainTimeout != 30*time.Second || c.LogLevel != slog.LevelInfo {
				t.Errorf("%+v", c)
			}
			if c.DataDir != "/home/u/.local/share/filestage" {
				t.Errorf("data dir %s", c.DataDir)
			}
		}},
		{"XDG data home", nil, map[string]string{"XDG_DATA_HOME": "/x"}, func(t *testing.T, c Config) {
			if c.DataDir != "/x/filestage" {
				t.Errorf("data dir %s", c.DataDir)
			}
		}},
		{"oauth issuer flags replace the environment's, and add up", []string{"--transport", "http", "--oauth-issuer", "https://a.example", "--oauth-issuer", "https://b.example,https://c.example"},
			map[string]string{"FILESTAGE_OAUTH_ISSUER": "https://env.example"}, func(t *testing.T, c Config) {
				if want := []string{"https://a.example", "https://b.example", "https://c.example"}; !slices.Equal(c.OAuthIssuers, want) {
					t.Errorf("issuers %v, want %v", c.OAuthIssuers, want)
				}
			}},
		{"retention 0 keeps for ever", []string{"--retention", "0"}, nil, func(t *testing.T, c Config) {
			if c.Retention != 0 {
				t.Errorf("retention %v", c.Retention)
			}
		}},
		{"store commands", []string{"rm", "a/B_C/d.txt", "--data-dir", "/d", "e/F_G/h.pdf"}, nil, func(t *testing.T, c Config) {
			if c.Command != CmdRm || !slices.Equal(c.Keys, []string{"a/B_C/d.txt", "e/F_G/h.pdf"}) || c.DataDir != "/d" || c.LogLevel != slog.LevelWarn {
				t.Errorf("%+v", c)
			}
		}},
		{"ls flags", []string{"ls", "--prefix", "gmail/", "--json"}, nil, func(t *testing.T, c Config) {
			if c.Command != CmdLs || c.Prefix != "gmail/" || !c.JSON || c.Retention != DefaultRetention {
				t.Errorf("%+v", c)
			}
		}},
		{"token new", []string{"token", "new", "ci-bot", "--scopes", "files:stage"}, nil, func(t *testing.T, c Config) {
			if c.Command != CmdTokenNew || c.TokenName != "ci-bot" || !slices.Equal(c.TokenScopes, []string{"files:stage"}) {
				t.Errorf("%+v", c)
			}
		}},
		{"http default listen", []string{"serve", "--transport", "http"}, nil, func(t *testing.T, c Config) {
			if c.Listen != "127.0.0.1:8080" {
				t.Errorf("listen %s", c.Listen)
			}
		}},
		{"every variable", nil, map[string]string{
			"FILESTAGE_TRANSPORT": "http", "FILESTAGE_LISTEN": "0.0.0.0:9000", "FILESTAGE_PROVIDER": "s3", "FILESTAGE_DATA_DIR": "/d",
			"FILESTAGE_PUBLIC_URL": "https://files.example.com/", "FILESTAGE_MAX_BYTES": "2GiB", "FILESTAGE_ALLOW_PRIVATE_URLS": "1",
			"FILESTAGE_AUTH_TOKEN": "t\n", "FILESTAGE_ALLOWED_ORIGINS": "https://a.example, https://b.example/", "FILESTAGE_FETCH_TIMEOUT": "90s", "FILESTAGE_DRAIN_TIMEOUT": "2m",
			"FILESTAGE_LOG_LEVEL": "debug", "FILESTAGE_FILE_ROOTS": "/, /home/u/projects/ ,", "FILESTAGE_MAX_INLINE_BYTES": "64KiB",
			"FILESTAGE_STATELESS": "true", "FILESTAGE_TOKENS_FILE": "/etc/filestage/tokens", "FILESTAGE_OAUTH_ISSUER": "https://as.example/, https://as2.example",
			"FILESTAGE_OAUTH_AUDIENCE": "https://files.example.com/mcp", "FILESTAGE_OAUTH_INTROSPECTION_URL": "https://as.example/introspect",
			"FILESTAGE_OAUTH_INTROSPECTION_CLIENT_ID": "filestage", "FILESTAGE_OAUTH_INTROSPECTION_CLIENT_SECRET": "s\n",
			"FILESTAGE_SCOPE_STAGE": "stage", "FILESTAGE_SCOPE_PRESIGN": "presign", "FILESTAGE_SCOPE_METRICS": "ops", "FILESTAGE_CLIENT_MAX_STAGES": "3", "FILESTAGE_CLIENT_CALLS_PER_MINUTE": "60", "FILESTAGE_CLIENT_MAX_SESSIONS": "7",
			"FILESTAGE_RETENTION": "30d", "FILESTAGE_DOWNLOAD_URL_TTL": "15m",
			"FILESTAGE_LOG_FORMAT": "json",
		}, func(t *testing.T, c Config) {
			want := Config{Command: CmdServe, Transport: "http", Listen: "0.0.0.0:9000", Provider: "s3", DataDir: "/d",
				PublicURL: "https://files.example.com", MaxBytes: 2 << 30, AllowPrivateURLs: true, AuthToken: "t",
				AllowedOrigins: []string{"https://a.example", "https://b.example"}, FetchTimeout: 90 * time.Second, DrainTimeout: 2 * time.Minute, LogLevel: slog.LevelDebug,
				FileRoots: []string{"/", "/home/u/projects/"}, MaxInlineBytes: 64 << 10, Stateless: true,
				TokensFile: "/etc/filestage/tokens", OAuthIssuers: []string{"https://as.example/", "https://as2.example"},
				OAuthAudience: "https://files.example.com/mcp", OAuthIntrospectionURL: "https://as.example/introspect",
				OAuthIntrospectionClientID: "filestage", OAuthIntrospectionClientSecret: "s",
				ScopeStage: "stage", ScopePresign: "presign", ScopeMetrics: "ops", ClientMaxStages: 3, ClientCallsPerMinute: 60, ClientMaxSessions: 7, UploadLinkTTL: 30 * time.Minute,
				Retention: 30 * 24 * time.Hour, DownloadURLTTL: 15 * time.Minute, LogFormat: "json"}
			if !slices.Equal(c.AllowedOrigins, want.AllowedOrigins) || !slices.Equal(c.FileRoots, want.FileRoots) {
				t.Errorf("origins %v, roots %v", c.AllowedOrigins, c.FileRoots)
			}
			c.AllowedOrigins, want.AllowedOrigins, c.FileRoots, want.FileRoots = nil, nil, nil, nil
			if !reflect.DeepEqual(c, want) {
				t.Errorf("got  %+v\nwant %+v", c, want)
			}
		}},
		{"flags win over the environment", []string{"--max-bytes", "10MB", "--provider=local", "--allow-private-urls=false"},
			map[string]string{"FILESTAGE_MAX_BYTES": "1GiB", "FILESTAGE_PROVIDER": "s3", "FILESTAGE_ALLOW_PRIVATE_URLS": "true"},
			func(t *testing.T, c Config) {
				if c.MaxBytes != 10e6 || c.Provider != "local" || c.AllowPrivateURLs {
					t.Errorf("%+v", c)
				}
			}},
		{"stateless flag", []string{"serve", "--transport", "http", "--stateless"}, nil, func(t *testing.T, c Config) {
			if !c.Stateless {
				t.Errorf("%+v", c)
			}
		}},
		{"stateless off by default", []string{"serve", "--transport", "http"}, nil, func(t *testing.T, c Config) {
			if c.Stateless {
				t.Errorf("%+v", c)
			}
		}},
		{"version", []string{"version"}, nil, func(t *testing.T, c Config) {
			if c.Command != CmdVersion {
				t.Errorf("command %s", c.Command)
			}
		}},
		{"--version", []string{"--version"}, nil, func(t *testing.T, c Config) {
			if c.Command != CmdVersion {
				t.Errorf("command %s", c.Command)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(tt.args, env(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

// TestServeFolders: filestage serve FOLDER... adds each folder to the
// file roots the flag or the environment named, wherever the flags stand.
func TestServeFolders(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		env  map[string]string
		want []string
	}{
		{"none", []string{"serve"}, nil, nil},
		{"folders", []string{"serve", "/a", "/b c"}, nil, []string{"/a", "/b c"}},
		{"after the flag's", []string{"serve", "--file-roots", "/c,/d", "/a"}, nil, []string{"/c", "/d", "/a"}},
		{"between flags", []string{"serve", "/a", "--log-level", "debug", "/b"}, nil, []string{"/a", "/b"}},
		{"after the environment's", []string{"serve", "/a"}, map[string]string{"FILESTAGE_FILE_ROOTS": "/c"}, []string{"/c", "/a"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(tt.args, env(tt.env))
			if err != nil || !slices.Equal(c.FileRoots, tt.want) {
				t.Errorf("roots %q, %v; want %q", c.FileRoots, err, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"public listener without a token", []string{"--transport", "http", "--listen", "0.0.0.0:8080"}, nil, "FILESTAGE_AUTH_TOKEN"},
		{"all interfaces without a token", []string{"--transport", "http", "--listen", ":8080"}, nil, "FILESTAGE_AUTH_TOKEN"},
		{"public listener from the environment", nil, map[string]string{"FILESTAGE_TRANSPORT": "http", "FILESTAGE_LISTEN": "192.0.2.1:80"}, "without authentication"},
		{"oauth on stdio", []string{"--oauth-issuer", "https://as.example"}, nil, "--transport http"},
		{"oauth issuer not a URL", []string{"--transport", "http", "--oauth-issuer", "as.example"}, nil, "issuer's URL"},
		{"oauth issuer with a query", []string{"--transport", "http", "--oauth-issuer", "https://as.example/?x=1"}, nil, "issuer's URL"},
		{"audience without issuer", []string{"--transport", "http", "--oauth-audience", "https://x.example/mcp"}, nil, "needs --oauth-issuer"},
		{"introspection id without secret", []string{"--transport", "http", "--oauth-issuer", "https://as.example", "--oauth-introspection-client-id", "x"}, nil, "go together"},
		{"scope with a space", []string{"--scope-stage", "files stage"}, nil, "printable ASCII"},
		{"scope with a quote", []string{"--scope-presign", `a"b`}, nil, "printable ASCII"},
		{"token without new", []string{"token", "list"}, nil, "usage: filestage token new"},
		{"token new without name", []string{"token", "new"}, nil, "usage: filestage token new"},
		{"token new bad scope", []string{"token", "new", "x", "--scopes", "a b"}, nil, "is not a scope"},
		{"public URL behind a proxy without a token", []string{"--transport", "http", "--public-url", "https://files.example.com"}, nil, "FILESTAGE_AUTH_TOKEN"},
		{"unknown transport", []string{"--transport", "ws"}, nil, "stdio or http"},
		// Sessionless serving only means something over HTTP.
		{"stateless over stdio", []string{"--stateless"}, nil, "--transport http"},
		{"stateless over stdio from the environment", nil, map[string]string{"FILESTAGE_STATELESS": "1"}, "--transport http"},
		{"bad stateless value", nil, map[string]string{"FILESTAGE_TRANSPORT": "http", "FILESTAGE_STATELESS": "sometimes"}, "FILESTAGE_STATELESS"},
		{"bad size", []string{"--max-bytes", "lots"}, nil, "512MiB"},
		{"zero size", []string{"--max-bytes", "0"}, nil, "positive"},
		{"bad size in the environment", nil, map[string]string{"FILESTAGE_MAX_BYTES": "-1"}, "FILESTAGE_MAX_BYTES"},
		{"bad bool", nil, map[string]string{"FILESTAGE_ALLOW_PRIVATE_URLS": "yes please"}, "FILESTAGE_ALLOW_PRIVATE_URLS"},
		{"bad public URL", []string{"--public-url", "files.example.com"}, nil, "--public-url"},
		{"bad origin", []string{"--allowed-origins", "example.com"}, nil, "--allowed-origins"},
		{"bad listen", []string{"--listen", "8080"}, nil, "--listen"},
		{"bad duration", []string{"--fetch-timeout", "forever"}, nil, "duration"},
		{"no drain", []string{"--drain-timeout", "0s"}, nil, "--drain-timeout must be positive"},
		{"unknown flag", []string{"--nope"}, nil, "nope"},
		{"negative retention", []string{"--retention", "-1h"}, nil, "--retention"},
		{"retention in weeks", []string{"--retention", "2w"}, nil, "7d"},
		{"fractional days", []string{"--retention", "1.5d"}, nil, "7d"},
		{"unknown log format", []string{"--log-format", "xml"}, nil, "want text or json"},
		{"zero download TTL", []string{"--download-url-ttl", "0"}, nil, "--download-url-ttl"},
		{"rm without keys", []string{"rm"}, nil, "filestage rm KEY"},
		{"ls with an argument", []string{"ls", "gmail/"}, nil, "unexpected argument"},
		{"stray argument", []string{"extra"}, nil, "unexpected argument \"extra\""},
		{"a mistyped command", []string{"stgae", "q3.pdf"}, nil, "unexpected argument \"stgae\""},
		{"flags, then a stray argument", []string{"--transport", "stdio", "extra"}, nil, "unexpected argument \"extra\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.args, env(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one mentioning %q", err, tt.want)
			}
		})
	}
	for _, help := range [][]string{{"--help"}, {"-h"}, {"help"}, {"serve", "--help"}} {
		if _, err := Parse(help, env(nil)); !errors.Is(err, ErrHelp) {
			t.Errorf("%v: %v, want ErrHelp", help, err)
		}
	}
	if _, err := Parse([]string{"--transport", "http", "--listen", "0.0.0.0:8080", "--auth-token", "x"}, env(nil)); err != nil {
		t.Errorf("public listener with a token: %v", err)
	}
}

func TestUsageNamesEveryVariable(t *testing.T) {
	u := Usage(CmdServe)
	var c Config
	var s string
	for _, o := range options(&c, &s, &s, &s) {
		if !strings.Contains(u, "--"+o.flag+"\n") || !strings.Contains(u, "$"+o.env) {
			t.Errorf("usage lacks --%s / $%s", o.flag, o.env)
		}
	}
	for _, p := range Providers {
		if !strings.Contains(u, "  "+p.Name+" ") {
			t.Errorf("usage lacks provider %s", p.Name)
		}
	}
	for cmd, opts := range map[string][]option{CmdStage: commandOptions(&c), CmdPresign: commandOptions(&c), CmdLs: lsOptions(&c)} {
		for _, o := range opts {
			if !strings.Contains(Usage(cmd), "--"+o.flag+"\n") {
				t.Errorf("%s's usage lacks --%s", cmd, o.flag)
			}
		}
	}
}

// TestHelp: each command's help, as `filestage <command> --help` and
// `filestage help <command>` ask for it, is the golden text in testdata
// (UPDATE_GOLDEN=true go test ./config writes it after a change on purpose).
func TestHelp(t *testing.T) {
	for _, tt := range []struct {
		name string
		args [][]string
	}{
		{CmdServe, [][]string{{"--help"}, {"help"}, {"serve", "--help"}, {"-h"}}},
		{CmdStage, [][]string{{"stage", "--help"}, {"help", "stage"}}},
		{CmdPresign, [][]string{{"presign", "-h"}, {"help", "presign"}}},
		{CmdLs, [][]string{{"ls", "--help"}, {"help", "ls"}}},
		{CmdRm, [][]string{{"rm", "--help"}}},
		{CmdGC, [][]string{{"gc", "--help"}}},
		{CmdHealth, [][]string{{"health", "--help"}, {"help", "health"}}},
		{"token", [][]string{{"token", "new", "--help"}, {"help", "token"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, args := range tt.args {
				c, err := Parse(args, env(nil))
				if !errors.Is(err, ErrHelp) {
					t.Fatalf("%v: %v, want ErrHelp", args, err)
				}
				got = append(got, Usage(c.Command))
			}
			for _, g := range got[1:] {
				if g != got[0] {
					t.Errorf("%v and %v print different help", tt.args[0], tt.args[1])
				}
			}
			golden := filepath.Join("testdata", "help-"+tt.name+".golden")
			if os.Getenv("UPDATE_GOLDEN") == "true" {
				os.MkdirAll("testdata", 0o755)
				if err := os.WriteFile(golden, []byte(got[0]), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (UPDATE_GOLDEN=true writes it)", err)
			}
			if got[0] != string(want) {
				t.Errorf("help differs from %s (UPDATE_GOLDEN=true if on purpose):\n%s", golden, got[0])
			}
		})
	}
}

func TestCommands(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "q3 report.pdf")
	if err := os.WriteFile(file, []byte("%PDF-1.4"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "link.pdf")
	if err := os.Symlink(file, link); err != nil {
		t.Fatal(err)
	}
	fileURL := "file://" + strings.ReplaceAll(filepath.ToSlash(file), " ", "%20")
	tests := []struct {
		args             []string
		source, toolSlug string
		roots            []string
	}{
		{[]string{"stage", file, "--tool-slug", "GMAIL_SEND_EMAIL"}, fileURL, "GMAIL_SEND_EMAIL", []string{"/srv", dir}},
		{[]string{"stage", "--tool-slug=GMAIL_SEND_EMAIL", link}, fileURL, "GMAIL_SEND_EMAIL", []string{"/srv", dir}},
		{[]string{"stage", fileURL, "--tool-slug", "X_Y"}, fileURL, "X_Y", []string{"/srv", dir}},
		{[]string{"stage", "https://example.com/a.png", "--tool-slug", "X_Y"}, "https://example.com/a.png", "X_Y", []string{"/srv"}},
		{[]string{"stage", "data:,hi", "--tool-slug", "X_Y", "--provider", "s3"}, "data:,hi", "X_Y", []string{"/srv"}},
		{[]string{"presign", file, "--toolkit-slug", "gmail", "--tool-slug", "GMAIL_SEND_EMAIL"}, fileURL, "GMAIL_SEND_EMAIL", []string{"/srv", dir}},
	}
	for _, tt := range tests {
		c, err := Parse(tt.args, env(map[string]string{"FILESTAGE_FILE_ROOTS": "/srv"}))
		if err != nil {
			t.Errorf("%v: %v", tt.args, err)
			continue
		}
		if c.Command != tt.args[0] || c.Source != tt.source || c.ToolSlug != tt.toolSlug || !slices.Equal(c.FileRoots, tt.roots) || c.LogLevel != slog.LevelWarn {
			t.Errorf("%v: got %+v", tt.args, c)
		}
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"stage", "--tool-slug", "X_Y"}, "takes one file"},
		{[]string{"stage", "a", "b", "--tool-slug", "X_Y"}, "takes one file"},
		{[]string{"stage", filepath.Join(dir, "missing.pdf")}, "no such file"},
		{[]string{"presign", "https://example.com/a.png"}, "local file"},
		{[]string{"serve", "--tool-slug", "X_Y"}, "flag provided but not defined"},
		{[]string{"stage", file, "--max-inline-bytes", "0"}, "--max-inline-bytes"},
	} {
		if _, err := Parse(tt.args, env(nil)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v, want an error saying %q", tt.args, err, tt.want)
		}
	}
	// A command serves nothing, so a deployment's FILESTAGE_STATELESS in
	// the environment must not stop it.
	if _, err := Parse([]string{"stage", file}, env(map[string]string{"FILESTAGE_STATELESS": "true"})); err != nil {
		t.Errorf("stage with FILESTAGE_STATELESS set: %v", err)
	}
	// A command serves nothing: no token is needed whatever the listener.
	if _, err := Parse([]string{"stage", file, "--transport", "http", "--listen", "0.0.0.0:1"}, env(nil)); err != nil {
		t.Errorf("stage with a public listener setting: %v", err)
	}
}

// TestDataDir: the data directory is absolute, a --data-dir whose parent
// is missing is refused (a typo is not created with all its parents), and
// with no HOME (or AppData) nor XDG_DATA_HOME there is no default rather
// than a shared temporary directory. $TMP and $WD stand for a temporary
// directory and the working directory.
func TestDataDir(t *testing.T) {
	tmp := t.TempDir()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	expand := func(s string) string { return strings.NewReplacer("$TMP", tmp, "$WD", wd).Replace(s) }
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    string
		wantErr string
	}{
		{"absolute, parent exists", []string{"--data-dir", "$TMP/data"}, nil, "$TMP/data", ""},
		{"relative flag", []string{"--data-dir", "data"}, nil, "$WD/data", ""},
		{"relative variable", nil, map[string]string{"FILESTAGE_DATA_DIR": "./x/../data"}, "$WD/data", ""},
		{"relative XDG_DATA_HOME", nil, map[string]string{"XDG_DATA_HOME": "share"}, "$WD/share/filestage", ""},
		{"the default's folders need not exist", nil, map[string]string{"HOME": "$TMP/nobody"}, "$TMP/nobody/.local/share/filestage", ""},
		{"missing parent", []string{"--data-dir", "$TMP/missing/data"}, nil, "",
			"--data-dir $TMP/missing/data: $TMP/missing does not exist; create it first, or choose another folder with --data-dir or FILESTAGE_DATA_DIR"},
		{"missing parent from the environment", nil, map[string]string{"FILESTAGE_DATA_DIR": "$TMP/a/b/c"}, "",
			"--data-dir $TMP/a/b/c: $TMP/a/b does not exist; create it first, or choose another folder with --data-dir or FILESTAGE_DATA_DIR"},
		{"unexpanded ~", []string{"--data-dir", "~/filestage"}, nil, "",
			"--data-dir $WD/~/filestage: $WD/~ does not exist (only a shell expands ~: write the whole path); create it first, or choose another folder with --data-dir or FILESTAGE_DATA_DIR"},
		{"HOME and XDG_DATA_HOME unset", nil, map[string]string{"HOME": ""}, "",
			"no data directory: HOME and XDG_DATA_HOME are unset; choose a folder with --data-dir or FILESTAGE_DATA_DIR"},
		{"HOME unset, a command", []string{"ls"}, map[string]string{"HOME": ""}, "",
			"no data directory: HOME and XDG_DATA_HOME are unset; choose a folder with --data-dir or FILESTAGE_DATA_DIR"},
		{"HOME unset, --data-dir given", []string{"--data-dir", "$TMP/data"}, map[string]string{"HOME": ""}, "$TMP/data", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := slices.Clone(tt.args)
			for i := range args {
				args[i] = expand(args[i])
			}
			kv := map[string]string{}
			for k, v := range tt.env {
				kv[k] = expand(v)
			}
			c, err := Parse(args, env(kv))
			if tt.wantErr != "" {
				if err == nil || err.Error() != expand(tt.wantErr) {
					t.Errorf("error\n got %v\nwant %s", err, expand(tt.wantErr))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.DataDir != expand(tt.want) {
				t.Errorf("data dir %s, want %s", c.DataDir, expand(tt.want))
			}
		})
	}
}

// TestDefaultDataDir: where each OS keeps the data directory by default.
func TestDefaultDataDir(t *testing.T) {
	tests := []struct {
		goos    string
		env     map[string]string
		want    string
		wantErr string
	}{
		{"linux", map[string]string{"HOME": "/home/ana"}, filepath.Join("/home/ana", ".local", "share", "filestage"), ""},
		{"linux", map[string]string{"HOME": "/home/ana", "XDG_DATA_HOME": "/data"}, filepath.Join("/data", "filestage"), ""},
		{"freebsd", map[string]string{"HOME": "/home/ana"}, filepath.Join("/home/ana", ".local", "share", "filestage"), ""},
		{"darwin", map[string]string{"HOME": "/Users/ana"}, filepath.Join("/Users/ana", "Library", "Application Support", "filestage"), ""},
		{"darwin", map[string]string{"HOME": "/Users/ana", "XDG_DATA_HOME": "/data"}, filepath.Join("/data", "filestage"), ""},
		{"windows", map[string]string{"AppData": `C:\Users\ana\AppData\Roaming`, "HOME": "/home/ana"}, filepath.Join(`C:\Users\ana\AppData\Roaming`, "filestage"), ""},
		{"linux", map[string]string{"HOME": ""}, "", "no data directory: HOME and XDG_DATA_HOME are unset; choose a folder with --data-dir or FILESTAGE_DATA_DIR"},
		{"darwin", map[string]string{"HOME": ""}, "", "no data directory: HOME and XDG_DATA_HOME are unset; choose a folder with --data-dir or FILESTAGE_DATA_DIR"},
		{"windows", map[string]string{"HOME": "/home/ana"}, "", "no data directory: AppData and XDG_DATA_HOME are unset; choose a folder with --data-dir or FILESTAGE_DATA_DIR"},
	}
	for _, tt := range tests {
		got, err := defaultDataDir(tt.goos, env(tt.env))
		if got != tt.want || (err == nil) != (tt.wantErr == "") || (err != nil && err.Error() != tt.wantErr) {
			t.Errorf("%s %v: %q, %v; want %q, %q", tt.goos, tt.env, got, err, tt.want, tt.wantErr)
		}
	}
}
