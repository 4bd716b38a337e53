package auth

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// tokenPrefix marks filestage's named tokens, so that a leaked one is
// recognisable (secret scanners match such prefixes).
const tokenPrefix = "fst_"

// namePattern is what a client name may be: it appears in logs and in the
// tokens file's columns.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// NewToken returns a fresh token for client name and the tokens file line
// that accepts it: the token itself is shown once and stored nowhere.
func NewToken(name string, scopes []string) (token, line string, err error) {
	if !namePattern.MatchString(name) {
		return "", "", fmt.Errorf("client name %q: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	}
	b := make([]byte, 32)
	rand.Read(b)
	token = tokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	line = name + " " + HashToken(token)
	if len(scopes) > 0 {
		line += " scopes=" + strings.Join(scopes, ",")
	}
	return token, line, nil
}

// HashToken is how a tokens file stores token. Tokens are 256 random bits,
// so a fast hash is as good as a slow one: there is nothing to guess.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// entry is one client of a tokens file.
type entry struct {
	hash      [32]byte
	principal *Principal
	revoke    context.CancelFunc
}

// Tokens are the named clients of a tokens file, each known by the hash of
// its token. Load reads the file again: a client whose token is gone or
// changed is revoked at once, and the rest carry on.
type Tokens struct {
	path string
	// multi: more than one principal can exist, so each gets a namespace.
	multi bool

	mu     sync.RWMutex
	byHash map[[32]byte]*entry
}

// OpenTokens reads the tokens file at path.
func OpenTokens(path string, multi bool) (*Tokens, error) {
	t := &Tokens{path: path, multi: multi}
	if err := t.Load(); err != nil {
		return nil, err
	}
	return t, nil
}

// Load reads the file again. When it cannot be read or has a mistake, the
// clients stay as they were and the error says where.
func (t *Tokens) Load() error {
	f, err := os.Open(t.path)
	if err != nil {
		return fmt.Errorf("tokens file: %w", err)
	}
	defer f.Close()
	parsed, err := parseTokens(io.LimitReader(f, 16<<20), t.path)
	if err != nil {
		return err
	}
	t.mu.Lock()
	old := t.byHash
	next := make(map[[32]byte]*entry, len(parsed))
	for _, e := range parsed {
		e.principal.ID = "token:" + e.principal.Name
		if t.multi {
			e.principal.Namespace = namespace(e.principal.ID)
		}
		// The same client with the same token keeps its sessions and
		// calls, under its new scopes and limits.
		if prev, ok := old[e.hash]; ok && prev.principal.Name == e.principal.Name {
			e.principal.revoked, e.revoke = prev.principal.revoked, prev.revoke
			delete(old, e.hash)
		} else {
			e.principal.revoked, e.revoke = context.WithCancel(context.Background())
		}
		next[e.hash] = e
	}
	t.byHash = next
	t.mu.Unlock()
	for _, e := range old {
		e.revoke()
	}
	return nil
}

// Count is how many clients the file names.
func (t *Tokens) Count() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.byHash)
}

// lookup returns the principal token belongs to, or nil. The map is keyed
// by the token's hash, so nothing compares secret bytes.
func (t *Tokens) lookup(token string) *Principal {
	sum := sha256.Sum256([]byte(token))
	t.mu.RLock()
	defer t.mu.RUnlock()
	if e, ok := t.byHash[sum]; ok {
		return e.principal
	}
	return nil
}

// parseTokens reads lines of
//
//	NAME sha256:HEX [scopes=S1,S2] [max-stages=N] [calls-per-minute=N]
//
// with # comments and blank lines. Without scopes= a client holds every
// scope.
func parseTokens(r io.Reader, path string) ([]*entry, error) {
	var out []*entry
	names, hashes := map[string]int{}, map[[32]byte]int{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		bad := func(format string, a ...any) error {
			return fmt.Errorf("%s:%d: %s", path, n, fmt.Sprintf(format, a...))
		}
		if len(fields) < 2 {
			return nil, bad("want NAME sha256:HEX [scopes=A,B] [max-stages=N] [calls-per-minute=N]; 'filestage token new NAME' prints a line")
		}
		name := fields[0]
		if !namePattern.MatchString(name) {
			return nil, bad("client name %q: use 1 to 64 letters, digits, '.', '_' or '-'", name)
		}
		hexSum, ok := strings.CutPrefix(fields[1], "sha256:")
		sum, err := hex.DecodeString(hexSum)
		if !ok || err != nil || len(sum) != 32 {
			return nil, bad("%s: the second column is sha256: and 64 hex digits, the hash of the token (never the token itself)", name)
		}
		e := &entry{hash: [32]byte(sum), principal: &Principal{Name: name}}
		if prev, dup := names[name]; dup {
			return nil, bad("client %s is named on line %d too", name, prev)
		}
		if prev, dup := hashes[e.hash]; dup {
			return nil, bad("this token hash is on line %d too: each client needs a token of its own", prev)
		}
		names[name], hashes[e.hash] = n, n
		for _, opt := range fields[2:] {
			k, v, _ := strings.Cut(opt, "=")
			switch k {
			case "scopes":
				e.principal.scopes = []string{}
				for s := range strings.SplitSeq(v, ",") {
					if s != "" {
						e.principal.scopes = append(e.principal.scopes, s)
					}
				}
			case "max-stages", "calls-per-minute":
				i, err := strconv.Atoi(v)
				if err != nil || i < 0 {
					return nil, bad("%s: %s wants a whole number of 0 or more (0: the server's per-client default)", name, k)
				}
				if k == "max-stages" {
					e.principal.Limits.Stages = i
				} else {
					e.principal.Limits.CallsPerMinute = i
				}
			default:
				return nil, bad("%s: unknown option %q; options are scopes=, max-stages= and calls-per-minute=", name, opt)
			}
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}
