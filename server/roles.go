package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/flagstream/flags/internal/eval"
	"github.com/flagstream/flags/rules"
)

// Role is what a token may do (SPEC §10). Each role may do what the one
// before it may.
type Role string

// The roles.
const (
	// RoleReader reads the flags (GET /v1/flags), the stream and sends
	// events.
	RoleReader Role = "reader"
	// RoleOperator also reads admin objects, the audit log and experiments,
	// and may PATCH a flag when the patch changes nothing but "on": the kill
	// switch without the keys to the kingdom.
	RoleOperator Role = "operator"
	// RoleAdmin may do everything.
	RoleAdmin Role = "admin"
)

// rank orders the roles; 0 for an unknown one.
func (r Role) rank() int {
	switch r {
	case RoleReader:
		return 1
	case RoleOperator:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// Token is a named token with a role, known by the SHA-256 digest of its
// secret (never the secret): an entry of a tokens file.
type Token struct {
	// Name names the token in the access log and as the actor of the
	// audit log: 1-64 characters of A-Z a-z 0-9 . _ -.
	Name string
	Role Role
	// SHA256 is the digest of the secret sent as "Authorization: Bearer
	// SECRET".
	SHA256 [32]byte
}

// DefaultTokensPollInterval is how often Options.TokensFile is read for
// changes.
const DefaultTokensPollInterval = time.Second

// maxTokensFileBytes bounds a tokens file.
const maxTokensFileBytes = 1 << 20

// ParseTokens reads a tokens file (SPEC §10): a JSON array of
// {"name": NAME, "role": "reader"|"operator"|"admin", "sha256": HEX}, HEX the
// 64 hex digits of the SHA-256 of the secret (`printf %s "$SECRET" |
// sha256sum`). Unknown members, a member named twice in an entry, a bad
// role, a bad digest, a name used twice or a digest used twice are errors
// naming the entry, as in
// `tokens[2].sha256: want 64 hex digits`. An empty array is valid.
func ParseTokens(data []byte) ([]Token, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var entries []json.RawMessage
	if err := dec.Decode(&entries); err != nil {
		return nil, fmt.Errorf("flags: tokens: want [{\"name\": ..., \"role\": ..., \"sha256\": ...}]: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("flags: tokens: more after the array")
	}
	out := make([]Token, 0, len(entries))
	for i, e := range entries {
		at := fmt.Sprintf("flags: tokens[%d]", i)
		r, err := parseTokenEntry(e)
		if err != nil {
			return nil, fmt.Errorf("%s%w", at, err)
		}
		switch {
		case r.Name == nil:
			return nil, fmt.Errorf("%s.name: missing", at)
		case r.Role == nil:
			return nil, fmt.Errorf("%s.role: missing", at)
		case r.SHA256 == nil:
			return nil, fmt.Errorf("%s.sha256: missing", at)
		}
		t := Token{Name: *r.Name, Role: Role(*r.Role)}
		if t.Role.rank() == 0 {
			return nil, fmt.Errorf("%s.role: %q: want reader, operator or admin", at, *r.Role)
		}
		sum, err := hex.DecodeString(*r.SHA256)
		if err != nil || len(sum) != sha256.Size {
			return nil, fmt.Errorf("%s.sha256: want the 64 hex digits of the secret's SHA-256, not the secret", at)
		}
		copy(t.SHA256[:], sum)
		out = append(out, t)
	}
	if err := checkTokens(out, nil); err != nil {
		return nil, err
	}
	return out, nil
}

// tokenEntryJSON is an entry of a tokens file as written.
type tokenEntryJSON struct {
	Name   *string `json:"name"`
	Role   *string `json:"role"`
	SHA256 *string `json:"sha256"`
}

// parseTokenEntry reads one entry of a tokens file. An entry naming a
// member twice is refused: encoding/json would take the last, and
// {"role": "admin", "role": "reader"} reads as an admin to a person.
// The error starts with the path of the member at fault, after the
// entry's own (".role: named twice").
func parseTokenEntry(e json.RawMessage) (tokenEntryJSON, error) {
	var r tokenEntryJSON
	dec := json.NewDecoder(bytes.NewReader(e))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return r, fmt.Errorf(": want {\"name\": ..., \"role\": ..., \"sha256\": ...}: %w", err)
	}
	if name := eval.NamedTwice(e); name != "" {
		return r, fmt.Errorf(".%s: named twice", name)
	}
	return r, nil
}

// reservedActors are names no token may take: the server's own actors.
var reservedActors = []string{ActorFile, ActorProgram, ActorGuard, "-"}

// checkTokens checks that every name of tokens is valid and unique, also
// among the names taken, and that no digest repeats.
func checkTokens(tokens []Token, taken []tokenEntry) error {
	names := map[string]bool{}
	sums := map[[32]byte]bool{}
	for _, e := range taken {
		names[e.name] = true
		sums[e.sum] = true
	}
	for _, n := range reservedActors {
		names[n] = true
	}
	for i, t := range tokens {
		at := fmt.Sprintf("flags: tokens[%d]", i)
		if len(t.Name) > 64 || !rules.ValidKey(t.Name) {
			return fmt.Errorf("%s.name: %q: want 1-64 characters of A-Z a-z 0-9 . _ -", at, t.Name)
		}
		if names[t.Name] {
			return fmt.Errorf("%s.name: %q is taken (by another token, or by the server: %s)", at, t.Name, strings.Join(reservedActors, ", "))
		}
		if t.Role.rank() == 0 {
			return fmt.Errorf("%s.role: %q: want reader, operator or admin", at, t.Role)
		}
		if sums[t.SHA256] {
			return fmt.Errorf("%s.sha256: the same secret as another token", at)
		}
		if t.SHA256 == emptySecret {
			return fmt.Errorf("%s.sha256: the SHA-256 of an empty secret (was the variable hashed unset?)", at)
		}
		names[t.Name], sums[t.SHA256] = true, true
	}
	return nil
}

// emptySecret is the SHA-256 of "": the digest `printf %s "$SECRET" |
// sha256sum` gives when SECRET is unset. No token may have it.
var emptySecret = sha256.Sum256(nil)

// checkStatic refuses Options whose tokens share a secret: the SDK token
// equal to the admin token would make every service an admin.
func checkStatic(static []tokenEntry) error {
	for i, a := range static {
		for _, b := range static[:i] {
			if a.sum == b.sum {
				return fmt.Errorf("flags: server: the tokens %s and %s are the same secret", b.name, a.name)
			}
		}
	}
	return nil
}

// tokenEntry is one token the server accepts.
type tokenEntry struct {
	sum  [32]byte
	name string
	role Role
}

// tokenSet is every token the server accepts, swapped whole when the
// tokens file changes.
type tokenSet struct {
	entries   []tokenEntry
	readsOpen bool // no token may read but the admin's: reads need none
	adminOn   bool // a token may use the admin API (else its paths are 404)
}

// staticTokens are the tokens of Options: Token, PreviousTokens, AdminToken.
func staticTokens(o *Options) []tokenEntry {
	var out []tokenEntry
	if o.Token != "" {
		out = append(out, tokenEntry{sha256.Sum256([]byte(o.Token)), TokenName, RoleReader})
	}
	for i, t := range o.PreviousTokens {
		out = append(out, tokenEntry{sha256.Sum256([]byte(t)), previousTokenName(i), RoleReader})
	}
	if o.AdminToken != "" {
		out = append(out, tokenEntry{sha256.Sum256([]byte(o.AdminToken)), AdminTokenName, RoleAdmin})
	}
	return out
}

// newTokenSet is the static tokens plus more (Options.Tokens and the tokens
// file's).
func newTokenSet(static []tokenEntry, more ...[]Token) *tokenSet {
	set := &tokenSet{entries: append([]tokenEntry(nil), static...), readsOpen: true}
	for _, ts := range more {
		for _, t := range ts {
			set.entries = append(set.entries, tokenEntry{t.SHA256, t.Name, t.Role})
		}
	}
	for _, e := range set.entries {
		if e.role == RoleReader {
			set.readsOpen = false
		}
		if e.role.rank() >= RoleOperator.rank() {
			set.adminOn = true
		}
	}
	return set
}

// principal is who sent a request: its token's name and role, and the
// token's hash (zero for an anonymous read of a server whose reads are
// open), by which a stream is ended when its token is revoked.
type principal struct {
	name string
	role Role
	sum  [32]byte
}

// admits reports whether the token set (the tokens file reloaded, say)
// still lets who read: while reads are open anyone may, else only a token
// it holds.
func (set *tokenSet) admits(who principal) bool {
	if set.readsOpen {
		return true
	}
	found := false
	for i := range set.entries {
		if subtle.ConstantTimeCompare(who.sum[:], set.entries[i].sum[:]) == 1 {
			found = true
		}
	}
	return found && who.sum != [32]byte{}
}

// authorize checks the bearer token of r for a request that needs the role
// need. It answers 401 when there is no token or one the server does not
// know, 403 when the token's role is not enough. The name of the token
// accepted (never the token) goes to the access log and is returned: "-"
// for a read of a server whose reads are open.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, need Role) (principal, bool) {
	set := s.tokens.Load()
	if need == RoleReader && set.readsOpen {
		if _, sent := bearer(r); !sent || len(set.entries) == 0 {
			return principal{name: "-", role: RoleReader}, true
		}
		// A token sent to open reads of a server that has tokens must
		// still be one it knows (SPEC §5: a wrong one is 401): a revoked
		// or mistyped token is refused, not waved through.
	}
	return s.authorizeToken(w, r, set, need)
}

// authorizeToken is authorize once a token is required.
func (s *Server) authorizeToken(w http.ResponseWriter, r *http.Request, set *tokenSet, need Role) (principal, bool) {
	tok, ok := bearer(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="flagstream"`)
		writeError(w, http.StatusUnauthorized, "flags: missing bearer token", nil)
		return principal{}, false
	}
	sum := sha256.Sum256([]byte(tok))
	// Every comparison runs, whatever matches: no early exit.
	var who principal
	for i := range set.entries {
		if subtle.ConstantTimeCompare(sum[:], set.entries[i].sum[:]) == 1 {
			who = principal{set.entries[i].name, set.entries[i].role, sum}
		}
	}
	if who.name == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="flagstream", error="invalid_token"`)
		writeError(w, http.StatusUnauthorized, "flags: token not recognized", nil)
		return principal{}, false
	}
	if aw, ok := w.(*accessWriter); ok {
		aw.token = who.name
	}
	if who.role.rank() < need.rank() {
		writeError(w, http.StatusForbidden, fmt.Sprintf("flags: token %q has the role %s; this needs %s", who.name, who.role, need), nil)
		return principal{}, false
	}
	return who, true
}

// adminOn answers 404, and reports false, when no token may use the admin
// API.
func (s *Server) adminOn(w http.ResponseWriter) bool {
	if !s.tokens.Load().adminOn {
		writeError(w, http.StatusNotFound, "flags: not found", nil)
		return false
	}
	return true
}

// readTokensFile reads and parses a tokens file; sum is the hash of what it
// read.
func readTokensFile(path string) ([]Token, [32]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, [32]byte{}, fmt.Errorf("flags: tokens file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxTokensFileBytes+1))
	if err != nil {
		return nil, [32]byte{}, fmt.Errorf("flags: tokens file %s: %w", path, err)
	}
	sum := sha256.Sum256(data)
	if len(data) > maxTokensFileBytes {
		return nil, sum, fmt.Errorf("flags: tokens file %s: larger than %d bytes", path, maxTokensFileBytes)
	}
	tokens, err := ParseTokens(data)
	if err != nil {
		return nil, sum, fmt.Errorf("%s: %w", path, err)
	}
	return tokens, sum, nil
}

// watchTokens reads Options.TokensFile every TokensPollInterval and, when
// its content changed, swaps in its tokens. A file that cannot be read or
// parsed, or whose tokens clash with the others, is logged and ignored:
// the previous tokens stay. It returns when ctx is done.
func (s *Server) watchTokens(ctx context.Context, static []tokenEntry, last [32]byte) {
	path := s.opts.TokensFile
	failed := ""
	everyTick(ctx, s.opts.TokensPollInterval, func() {
		tokens, sum, err := readTokensFile(path)
		if err == nil && sum == last {
			failed = ""
			return
		}
		if err == nil {
			err = checkTokens(tokens, append(static, toEntries(s.opts.Tokens)...))
		}
		if err != nil {
			if msg := err.Error(); msg != failed { // once per problem
				s.log.Error("flags: tokens file not reloaded; the previous tokens stay", "file", path, "err", err)
				failed = msg
			}
			return
		}
		failed, last = "", sum
		set := newTokenSet(static, s.opts.Tokens, tokens)
		if set.readsOpen && !s.tokens.Load().readsOpen {
			// The last reader token removed: opening reads to everyone
			// is not what removing a token means. They stay closed.
			set.readsOpen = false
			s.log.Warn("flags: the tokens file holds no reader token now; reads stay closed to the tokens it lists (restart the server to open them)", "file", path)
		}
		s.tokens.Store(set)
		s.log.Info("flags: tokens file reloaded", "file", path, "tokens", len(tokens))
		s.endRevokedStreams(set)
	})
}

func toEntries(ts []Token) []tokenEntry {
	out := make([]tokenEntry, len(ts))
	for i, t := range ts {
		out[i] = tokenEntry{t.SHA256, t.Name, t.Role}
	}
	return out
}

// onlySwitches reports whether after differs from before in nothing but
// "on" (and the "version" the server sets): a PATCH an operator may make.
func onlySwitches(before, after json.RawMessage) bool {
	return contentSumWithout(before, "on") == contentSumWithout(after, "on")
}

// previousTokenName names Options.PreviousTokens[i]: previous-1 is the first.
func previousTokenName(i int) string { return "previous-" + strconv.Itoa(i+1) }

// TokenRole says whose token secret is and its role, checked as requests'
// tokens are (the console signs people in with it); ok is false for a
// token the server does not know.
func (s *Server) TokenRole(secret string) (name string, role Role, ok bool) {
	sum := sha256.Sum256([]byte(secret))
	for _, e := range s.tokens.Load().entries {
		if subtle.ConstantTimeCompare(sum[:], e.sum[:]) == 1 {
			name, role, ok = e.name, e.role, true
		}
	}
	return name, role, ok
}

// AtLeast reports whether role r includes every right of role other.
func (r Role) AtLeast(other Role) bool { return r.rank() >= other.rank() }
