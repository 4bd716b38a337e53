package auth

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestNewTokenLineIsAccepted(t *testing.T) {
	token, line, err := NewToken("ci-bot", []string{ScopeStage})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(token, tokenPrefix) || strings.Contains(line, token) {
		t.Fatalf("token %q, line %q: the line must hold the hash, never the token", token, line)
	}
	path := filepath.Join(t.TempDir(), "tokens")
	writeFile(t, path, "# clients\n"+line+"\n")
	a, err := New(Options{TokensFile: path})
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.Authenticate(t.Context(), token)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "ci-bot" || !p.Allows(ScopeStage) || p.Allows(ScopePresign) || p.Namespace == "" {
		t.Errorf("principal %+v", p)
	}
	if _, err := a.Authenticate(t.Context(), token+"x"); err == nil {
		t.Error("a token that differs by one byte was accepted")
	}
	if _, _, err := NewToken("../x", nil); err == nil {
		t.Error("a name with a slash was accepted")
	}
}

func TestParseTokens(t *testing.T) {
	hash := HashToken("a")
	hash2 := HashToken("b")
	tests := []struct {
		name, text, err string
		check           func(t *testing.T, es []*entry)
	}{
		{"empty", "# nobody yet\n\n", "", func(t *testing.T, es []*entry) {
			if len(es) != 0 {
				t.Errorf("%d entries", len(es))
			}
		}},
		{"every option", "bot " + hash + " scopes=files:stage,x:y max-stages=2 calls-per-minute=30 # trailing comment\n", "", func(t *testing.T, es []*entry) {
			p := es[0].principal
			if p.Name != "bot" || !p.Allows("x:y") || p.Allows(ScopePresign) || p.Limits != (Limits{Stages: 2, CallsPerMinute: 30}) {
				t.Errorf("%+v", p)
			}
		}},
		{"no scopes means all", "bot " + hash + "\n", "", func(t *testing.T, es []*entry) {
			if !es[0].principal.Allows("anything") {
				t.Error("no scopes= should grant every scope")
			}
		}},
		{"empty scopes means none", "bot " + hash + " scopes=\n", "", func(t *testing.T, es []*entry) {
			if es[0].principal.Allows(ScopeStage) {
				t.Error("scopes= should grant none")
			}
		}},
		{"token instead of hash", "bot fst_abc\n", "the hash of the token", nil},
		{"short hash", "bot sha256:abcd\n", "64 hex digits", nil},
		{"one column", "bot\n", "want NAME", nil},
		{"bad name", "b/ot " + hash + "\n", "client name", nil},
		{"duplicate name", "bot " + hash + "\nbot " + hash2 + "\n", "line 1 too", nil},
		{"duplicate hash", "a " + hash + "\nb " + hash + "\n", "token of its own", nil},
		{"unknown option", "bot " + hash + " admin=true\n", "unknown option", nil},
		{"negative limit", "bot " + hash + " max-stages=-1\n", "whole number", nil},
		{"limit not a number", "bot " + hash + " calls-per-minute=lots\n", "whole number", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es, err := parseTokens(strings.NewReader(tt.text), "tokens")
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one mentioning %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, es)
		})
	}
}

// TestTokensReload: a client whose line stays keeps its sessions (its
// revocation context lives on) under its new limits; a removed or re-keyed
// one is revoked at once; a file with a mistake changes nothing.
func TestTokensReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	line := func(name, token, opts string) string { return name + " " + HashToken(token) + " " + opts + "\n" }
	writeFile(t, path, line("keep", "k", "")+line("drop", "d", "")+line("rekey", "r1", ""))
	tk, err := OpenTokens(path, true)
	if err != nil {
		t.Fatal(err)
	}
	keep, drop, rekey := tk.lookup("k"), tk.lookup("d"), tk.lookup("r1")
	if keep == nil || drop == nil || rekey == nil {
		t.Fatal("a client of the file is not known")
	}

	writeFile(t, path, line("keep", "k", "max-stages=1")+line("rekey", "r2", ""))
	if err := tk.Load(); err != nil {
		t.Fatal(err)
	}
	if tk.lookup("d") != nil || tk.lookup("r1") != nil {
		t.Error("a removed or replaced token still works")
	}
	if drop.Revoked().Err() == nil || rekey.Revoked().Err() == nil {
		t.Error("a removed or re-keyed client was not revoked")
	}
	kept := tk.lookup("k")
	if kept.Revoked().Err() != nil || kept.Revoked() != keep.Revoked() || kept.Limits.Stages != 1 || kept.ID != keep.ID {
		t.Errorf("the kept client: revoked %v, limits %+v", kept.Revoked().Err(), kept.Limits)
	}

	writeFile(t, path, "keep not-a-hash\n")
	if err := tk.Load(); err == nil || !strings.Contains(err.Error(), path+":1") {
		t.Fatalf("error %v, want one naming %s:1", err, path)
	}
	if tk.lookup("k") == nil || tk.lookup("r2") == nil {
		t.Error("a file with a mistake changed the clients")
	}
	os.Remove(path)
	if err := tk.Load(); err == nil || tk.lookup("k") == nil {
		t.Error("a missing file changed the clients")
	}
}

func TestFromContextDefaultsToLocal(t *testing.T) {
	if p := FromContext(context.Background()); p.ID != "local" || !p.Allows(ScopeStage) || p.Namespace != "" {
		t.Errorf("%+v", p)
	}
	if namespace("a") == namespace("b") || len(namespace("token:x")) != 34 {
		t.Error("namespaces must differ per principal and have a fixed length")
	}
}
