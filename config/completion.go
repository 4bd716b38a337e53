package config

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// CmdCompletion prints a shell completion script.
const CmdCompletion = "completion"

// Shells are the shells Completion writes scripts for.
var Shells = []string{"bash", "zsh", "fish"}

// Completion is the completion script of shell, made from the same flag
// tables as the help, so the two never disagree.
func Completion(shell string) (string, error) {
	var d Config
	var s string
	global := flagNames(options(&d, &s, &s, &s))
	// $global is the server's flags, which every command but token takes.
	perCommand := map[string][]string{
		CmdServe:   {"$global"},
		CmdStage:   append(flagNames(commandOptions(&d)), "$global"),
		CmdPresign: append(flagNames(commandOptions(&d)), "$global"),
		CmdLs:      append(flagNames(lsOptions(&d)), "$global"),
		CmdRm:      {"$global"},
		CmdGC:      {"$global"},
		CmdHealth:  {"--listen"},
		"token":    {"--scopes"},
	}
	// The commands help has a page for, then the rest.
	helped := []string{CmdServe, CmdStage, CmdPresign, CmdLs, CmdRm, CmdGC, CmdHealth, "token"}
	commands := append(slices.Clone(helped), CmdVersion, "help", CmdCompletion)
	switch shell {
	case "bash", "zsh":
		var b strings.Builder
		b.WriteString("# filestage completion for bash and zsh: source <(filestage completion " + shell + ")\n")
		if shell == "zsh" {
			b.WriteString("autoload -U +X bashcompinit && bashcompinit\n")
		}
		fmt.Fprintf(&b, "_filestage() {\n  local cur=${COMP_WORDS[COMP_CWORD]} cmd=serve global=%q words\n", strings.Join(global, " "))
		b.WriteString("  if [ \"$COMP_CWORD\" -eq 1 ] && [[ $cur != -* ]]; then\n")
		fmt.Fprintf(&b, "    COMPREPLY=($(compgen -W %q -- \"$cur\")); return\n  fi\n", strings.Join(commands, " "))
		b.WriteString("  [[ ${COMP_WORDS[1]} != -* ]] && cmd=${COMP_WORDS[1]}\n")
		// A flag's value or a command's argument (a file, a key): the
		// shell's own completion, which -o default falls back to.
		b.WriteString("  case $cmd in help|completion) ;; *) [[ $cur == -* ]] || return 0 ;; esac\n")
		b.WriteString("  case $cmd in\n")
		for _, c := range sortedKeys(perCommand) {
			fmt.Fprintf(&b, "    %s) words=%q ;;\n", c, strings.Join(perCommand[c], " "))
		}
		b.WriteString("    help) words=\"" + strings.Join(helped, " ") + "\" ;;\n")
		b.WriteString("    completion) words=\"" + strings.Join(Shells, " ") + "\" ;;\n")
		b.WriteString("  esac\n  COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n}\ncomplete -o default -F _filestage filestage\n")
		return b.String(), nil
	case "fish":
		var b strings.Builder
		b.WriteString("# filestage completion for fish: filestage completion fish | source\n")
		fmt.Fprintf(&b, "complete -c filestage -f -n __fish_use_subcommand -a %q\n", strings.Join(commands, " "))
		for _, o := range options(&d, &s, &s, &s) {
			fmt.Fprintf(&b, "complete -c filestage -l %s -d %s\n", o.flag, fishQuote(firstClause(o.help)))
		}
		for _, o := range commandOptions(&d) {
			fmt.Fprintf(&b, "complete -c filestage -n '__fish_seen_subcommand_from stage presign' -l %s -d %s\n", o.flag, fishQuote(firstClause(o.help)))
		}
		for _, o := range lsOptions(&d) {
			fmt.Fprintf(&b, "complete -c filestage -n '__fish_seen_subcommand_from ls' -l %s -d %s\n", o.flag, fishQuote(firstClause(o.help)))
		}
		fmt.Fprintf(&b, "complete -c filestage -f -n '__fish_seen_subcommand_from completion' -a %q\n", strings.Join(Shells, " "))
		return b.String(), nil
	}
	return "", fmt.Errorf("completion %q: want one of %s", shell, strings.Join(Shells, ", "))
}

func flagNames(opts []option) []string {
	names := make([]string, len(opts))
	for i, o := range opts {
		names[i] = "--" + o.flag
	}
	return names
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// firstClause is a flag's help up to its first parenthesis or comma, for
// the one line fish shows.
func firstClause(help string) string {
	if i := strings.IndexAny(help, "(,;"); i > 0 {
		help = help[:i]
	}
	return strings.TrimSpace(help)
}

// fishQuote quotes s for fish: single quotes, in which only \\ and \'
// are special, so no $ or ( in a help text is ever expanded.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
