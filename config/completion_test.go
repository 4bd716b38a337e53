package config

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestCompletionBash sources the bash script in a real bash and asks it
// what completes, as the shell does on a tab.
func TestCompletionBash(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal("bash is needed to test the bash completion: ", err)
	}
	script, err := Completion("bash")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "filestage.bash")
	os.WriteFile(path, []byte(script), 0o644)
	tests := []struct {
		words     []string
		want, not []string
	}{
		{[]string{"filestage", "pre"}, []string{"presign"}, []string{"stage"}},
		{[]string{"filestage", ""}, []string{"serve", "stage", "ls", "completion"}, nil},
		{[]string{"filestage", "stage", "--to"}, []string{"--tool-slug", "--toolkit-slug", "--tokens-file"}, nil},
		{[]string{"filestage", "rm", "--to"}, []string{"--tokens-file"}, []string{"--tool-slug"}},
		{[]string{"filestage", "ls", "--"}, []string{"--prefix", "--json", "--data-dir"}, []string{"--tool-slug"}},
		{[]string{"filestage", "--data"}, []string{"--data-dir"}, nil},
		{[]string{"filestage", "serve", "--ret"}, []string{"--retention"}, nil},
		{[]string{"filestage", "completion", ""}, []string{"bash", "zsh", "fish"}, nil},
		{[]string{"filestage", "token", "new", "--"}, []string{"--scopes"}, []string{"--data-dir"}},
		// A flag's value or a command's argument is the shell's to
		// complete (files): nothing is offered.
		{[]string{"filestage", "serve", "--data-dir", ""}, nil, []string{"--transport"}},
		{[]string{"filestage", "stage", ""}, nil, []string{"--tool-slug"}},
	}
	for _, tt := range tests {
		cmd := exec.Command(bash, "--norc", "-c", `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _filestage; printf '%s\n' "${COMPREPLY[@]}"`, "bash", path)
		cmd.Args = append(cmd.Args, tt.words...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", tt.words, err, out)
		}
		got := strings.Fields(string(out))
		if tt.want == nil && len(got) != 0 {
			t.Errorf("%v completes to %v, want nothing (the shell's files)", tt.words, got)
		}
		for _, w := range tt.want {
			if !slices.Contains(got, w) {
				t.Errorf("%v completes to %v, without %s", tt.words, got, w)
			}
		}
		for _, w := range tt.not {
			if slices.Contains(got, w) {
				t.Errorf("%v completes to %v, with %s", tt.words, got, w)
			}
		}
	}
}

// TestCompletionScripts: every shell's script names every flag, and an
// unknown shell is refused.
func TestCompletionScripts(t *testing.T) {
	var c Config
	var s string
	for _, shell := range Shells {
		script, err := Completion(shell)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range append(options(&c, &s, &s, &s), commandOptions(&c)...) {
			if !strings.Contains(script, o.flag) {
				t.Errorf("%s: no --%s", shell, o.flag)
			}
		}
		if shell == "fish" {
			for _, line := range strings.Split(strings.TrimSpace(script), "\n") {
				if !strings.HasPrefix(line, "complete -c filestage ") && !strings.HasPrefix(line, "#") {
					t.Errorf("fish: %q", line)
				}
			}
		}
	}
	if got := fishQuote(`it's a \ "$x"`); got != `'it\'s a \\ "$x"'` {
		t.Errorf("fishQuote: %s", got)
	}
	if _, err := Completion("tcsh"); err == nil {
		t.Error("a tcsh script")
	}
	for _, args := range [][]string{{"completion"}, {"completion", "tcsh"}, {"completion", "bash", "zsh"}} {
		if _, err := Parse(args, env(nil)); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}
