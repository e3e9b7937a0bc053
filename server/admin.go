package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flagstream/flags/internal/eval"
	"github.com/flagstream/flags/rules"
)

// maxStaleWrites is how many times an admin write meets a store changed by
// hand (ErrStale), loads that change and tries again, before it gives up
// with 409: a file rewritten without pause must not hold a request forever.
const maxStaleWrites = 8

// maxLedgerStaleWrites is maxStaleWrites over a Ledger: there ErrStale means
// another replica wrote first, which under a burst of writes through
// several replicas can happen many times in a row to one request, and each
// attempt makes progress (the replica catches up to the store's version).
const maxLedgerStaleWrites = 100

// adminOp is what an admin write does to its key.
type adminOp int

const (
	opPut adminOp = iota
	opPatch
	opDelete
)

// mergePatchType is the media type of a JSON merge patch (RFC 7396), the
// only one PATCH takes.
const mergePatchType = "application/merge-patch+json"

// adminRequest is one admin write, as read from its request.
type adminRequest struct {
	kind        Kind
	key         string
	op          adminOp
	body        json.RawMessage // compact; nil for DELETE; the merge patch for PATCH
	bodyBytes   int             // as sent
	ifMatch     string          // header values; "" when absent
	ifNoneMatch string
	actor       string // the name of the request's token
	role        Role   // its role
	comment     string // X-Flags-Comment
	as          Action // the audit's action when not the op's (a guard's rollback)
}

// action is what the audit log calls req.
func (r *adminRequest) action() Action {
	if r.as != "" {
		return r.as
	}
	switch r.op {
	case opPatch:
		return ActionPatch
	case opDelete:
		return ActionDelete
	}
	return ActionPut
}

func (r *adminRequest) path() string { return string(r.kind) + "s." + r.key }

// adminResult is the answer to an admin write.
type adminResult struct {
	status     int
	msg        string // the patch data (200) or the error message
	problems   []problemJSON
	etag       string // the object's tag after the write, or its current one with 412
	retryAfter string // Retry-After of a 503
}

// writeResult answers res.
func writeResult(w http.ResponseWriter, res adminResult) {
	if res.etag != "" {
		w.Header().Set("ETag", res.etag)
	}
	if res.retryAfter != "" {
		w.Header().Set("Retry-After", res.retryAfter)
	}
	if res.status != http.StatusOK {
		writeError(w, res.status, res.msg, res.problems)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, res.msg+"\n")
}

func failed(status int, format string, args ...any) adminResult {
	return adminResult{status: status, msg: fmt.Sprintf(format, args...)}
}

// adminKey answers the common part of every admin call: the API is on, a
// token of the role need is sent, the key is valid. It returns the key and
// who sent it, or "" when it has answered.
func (s *Server) adminKey(w http.ResponseWriter, r *http.Request, kind Kind, need Role) (key string, who principal) {
	if !s.adminOn(w) {
		return "", principal{}
	}
	who, ok := s.authorize(w, r, need)
	if !ok {
		return "", principal{}
	}
	key = r.PathValue("key")
	if !rules.ValidKey(key) {
		path := string(kind) + "s." + key
		writeError(w, http.StatusBadRequest, fmt.Sprintf("flags: %s: invalid key", path), []problemJSON{{
			Path: path, Field: "key",
			Message: fmt.Sprintf("invalid key %q: want 1-%d characters of A-Z a-z 0-9 . _ -", key, rules.MaxKeyLength),
		}})
		return "", principal{}
	}
	return key, who
}

// adminGet serves GET /v1/admin/flags/{key} (and segments): the object as
// served, with ETag "V", V its per-object version (SPEC §10).
func (s *Server) adminGet(kind Kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key, _ := s.adminKey(w, r, kind, RoleOperator)
		if key == "" {
			return
		}
		s.writeMu.Lock()
		e := s.entries(kind)[key]
		s.writeMu.Unlock()
		if e == nil {
			writeError(w, http.StatusNotFound, fmt.Sprintf("flags: %ss.%s: no such %s", kind, key, kind), nil)
			return
		}
		tag := versionTag(e.version)
		h := w.Header()
		h.Set("ETag", tag)
		h.Set("Cache-Control", "no-cache")
		if ok, err := tagsMatch(r.Header.Get("If-None-Match"), e, true); err == nil && ok {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h.Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(append(e.raw[:len(e.raw):len(e.raw)], '\n'))
	}
}

// adminHandler serves PUT, PATCH or DELETE of /v1/admin/flags/{key} or
// /v1/admin/segments/{key}. A success answers 200 with the data of the patch
// it published: {"version":N,"flags":{...},"segments":{...}}, and, for PUT
// and PATCH, the object's new ETag.
func (s *Server) adminHandler(kind Kind, op adminOp) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		defer s.countAdminWrite(w)
		need := RoleAdmin
		if op == opPatch && kind == KindFlag {
			need = RoleOperator // who may switch it on or off; checked below
		}
		key, who := s.adminKey(w, r, kind, need)
		if key == "" {
			return
		}
		comment, ok := s.admitWithComment(w, r)
		if !ok {
			return
		}
		defer s.writes.Done()
		req := &adminRequest{kind: kind, key: key, op: op, actor: who.name, role: who.role, comment: comment,
			ifMatch: r.Header.Get("If-Match"), ifNoneMatch: r.Header.Get("If-None-Match")}
		if op == opPatch {
			if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != mergePatchType {
				writeError(w, http.StatusUnsupportedMediaType,
					fmt.Sprintf("flags: %s: PATCH takes a JSON merge patch: Content-Type %s, not %q", req.path(), mergePatchType, r.Header.Get("Content-Type")), nil)
				return
			}
		}
		if op != opDelete {
			body, ok := s.readAdminBody(w, r, s.opts.MaxBodyBytes, "body")
			if !ok {
				return
			}
			if res := readBody(req, body); res.status != 0 {
				writeError(w, res.status, res.msg, res.problems)
				return
			}
		}
		writeResult(w, s.adminWrite(r.Context(), req))
	}
}

// countAdminWrite counts an admin write, whatever its answer (a body that
// is no flag, a refused token, a stale If-Match...), in Stats.AdminWrites,
// by the name of the token the access log names ("-" for none) and the
// status answered: a pipeline pushing what is refused shows in /metrics.
func (s *Server) countAdminWrite(w http.ResponseWriter) {
	aw, ok := w.(*accessWriter)
	if !ok {
		return
	}
	status := aw.status
	if status == 0 {
		status = http.StatusOK
	}
	s.stats.adminWrite(aw.token, status)
}

// admitWithComment reads a write's X-Flags-Comment (400 when it is not
// one) and admits the write (503 when the server is closing). When it
// reports true, the caller must call s.writes.Done once the write is done.
func (s *Server) admitWithComment(w http.ResponseWriter, r *http.Request) (string, bool) {
	comment, err := readComment(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "flags: "+err.Error(), nil)
		return "", false
	}
	return comment, s.admitWrite(w)
}

// readAdminBody reads a write's request body, at most limit bytes and
// within WriteTimeout; what names it in the 413 answer ("body" or
// "document"). It reports false once it has answered a body it could not
// read.
func (s *Server) readAdminBody(w http.ResponseWriter, r *http.Request, limit int64, what string) ([]byte, bool) {
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.opts.WriteTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("flags: %s larger than %d bytes", what, tooBig.Limit), nil)
		return nil, false
	case err != nil:
		writeError(w, http.StatusBadRequest, "flags: reading body: "+err.Error(), nil)
		return nil, false
	}
	return body, true
}

// readBody checks a PUT or PATCH body and keeps it, compacted, in req: it must be
// JSON, a JSON object (null, arrays, strings, numbers and booleans are
// refused: SPEC §13), and what the document parser accepts as a member of a
// document (nesting, UTF-8). It returns a zero status when the body is fine.
func readBody(req *adminRequest, body []byte) adminResult {
	path := req.path()
	var c bytes.Buffer
	if err := json.Compact(&c, body); err != nil {
		res := failed(http.StatusBadRequest, "flags: %s: body is not JSON: %v", path, err)
		res.problems = []problemJSON{{Path: path, Message: "not JSON: " + err.Error()}}
		return res
	}
	if c.Len() == 0 || c.Bytes()[0] != '{' {
		what := jsonKind(c.Bytes())
		res := failed(http.StatusBadRequest, "flags: %s: body is %s, want a JSON object (a %s)", path, what, req.kind)
		res.problems = []problemJSON{{Path: path, Message: fmt.Sprintf("got %s, want an object", what)}}
		return res
	}
	if err := parseMember(req.kind, c.Bytes()); err != nil {
		res := failed(http.StatusBadRequest, "flags: %s: body refused as a member of a document: %v", path, err)
		p := problemJSON{Path: path, Message: err.Error()}
		if off, ok := eval.ErrorOffset(err); ok { // invalid UTF-8, nested too deep: name the field
			p.Field = eval.FieldAt(c.Bytes(), off-memberOffset(req.kind))
			p.Path = (&eval.Problem{Kind: string(req.kind), Key: req.key, Field: p.Field}).Path()
		}
		res.problems = []problemJSON{p}
		return res
	}
	req.body, req.bodyBytes = c.Bytes(), len(body)
	return adminResult{}
}

// jsonKind names the kind of the compact JSON value v.
func jsonKind(v []byte) string {
	switch {
	case len(v) == 0:
		return "empty"
	case v[0] == 'n':
		return "null"
	case v[0] == '[':
		return "an array"
	case v[0] == '"':
		return "a string"
	case v[0] == 't' || v[0] == 'f':
		return "a boolean"
	}
	return "a number"
}

// adminWrite validates, stores durably and publishes one admin change.
func (s *Server) adminWrite(ctx context.Context, req *adminRequest) adminResult {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.isClosed() {
		return failed(http.StatusServiceUnavailable, "%s", ErrClosed.Error())
	}
	return s.storeWrite(ctx, writeOp{
		path:      req.path(),
		prepare:   func() (*prepared, adminResult) { return s.prepareAdmin(req) },
		collides:  func(u update) bool { return u.touches(req.kind, req.key) },
		bodyBytes: req.bodyBytes,
		inPlace:   req.as == ActionGuard,
		meta:      auditMeta{actor: req.actor, action: req.action(), comment: req.comment},
		logAttrs:  []any{string(req.kind), req.key, "action", req.action(), "actor", req.actor},
	})
}

// writeOp is one change the store is asked to make durable before it is
// published.
type writeOp struct {
	path string // names it in errors: "flags.KEY", or "document"
	// prepare builds the patch from what is served; it returns a nil patch
	// and the answer when the write cannot go ahead, else a 200 answer
	// (its ETag) for the patch.
	prepare func() (*prepared, adminResult)
	// collides reports whether a change loaded from the store meanwhile
	// (a hand edit) touched what the write changes: 409 then. nil: never.
	collides  func(u update) bool
	replace   bool // Commit.Replace
	inPlace   bool // Commit.InPlace
	bodyBytes int  // the request body, for a single change
	meta      auditMeta
	logAttrs  []any
}

// storeWrite asks the store to make op durable and publishes it. writeMu
// must be held.
//
// The store is asked to write only after everything else has been checked.
// When it reports that its content changed by other means (ErrStale: a hand
// edit of the file), that change is loaded and published first, as its own
// patch, and the write is prepared and made again on top of it; when the
// change collides with the write, it is refused with 409 rather than
// overwrite it.
func (s *Server) storeWrite(ctx context.Context, op writeOp) adminResult {
	for attempt := 1; ; attempt++ {
		p, res := op.prepare()
		if p == nil {
			return res
		}
		ok := adminResult{status: http.StatusOK, msg: string(p.data), etag: res.etag}
		if p.u.empty() {
			return ok
		}
		c := &Commit{Version: p.st.version, Changes: p.u.changes(op.bodyBytes), Replace: op.replace, InPlace: op.inPlace,
			Audit: s.auditEntries(p.u, p.st.version, op.meta)}
		err := s.store.Write(ctx, c)
		if err == nil {
			s.apply(p)
			s.log.Info("flags: published", append([]any{"cause", "admin", "version", p.st.version}, op.logAttrs...)...)
			return ok
		}
		if !errors.Is(err, ErrStale) || !s.mayRetryStale(attempt) {
			return s.writeFailed(op.path, err)
		}
		if res, retry := s.loadStale(ctx, op, err); !retry {
			return res
		}
	}
}

// mayRetryStale reports whether a write refused as stale at its attempt-th
// try may be made again. Over a Ledger, other replicas' writes make it
// stale too, so it is given more tries.
func (s *Server) mayRetryStale(attempt int) bool {
	return attempt < maxStaleWrites || s.ledger != nil && attempt < maxLedgerStaleWrites
}

// loadStale loads and publishes the change that made the store answer a
// write with ErrStale (err), and reports whether the write may be prepared
// and made again on top of it; if not, the answer.
func (s *Server) loadStale(ctx context.Context, op writeOp, err error) (adminResult, bool) {
	s.log.Info("flags: admin write found the store changed; loading that first", "target", op.path, "err", err)
	u, err := s.reloadLocked(ctx)
	if errors.Is(err, ErrUnavailable) {
		return unavailable(op.path, err), false
	}
	if err != nil {
		return failed(http.StatusConflict, "flags: %s: the store changed and its new content cannot be published (%v): fix it first", op.path, err), false
	}
	// Another replica's write (a Ledger) is like any other admin
	// write: prepare checks If-Match again. A hand edit of the key
	// is not overwritten.
	if s.ledger == nil && op.collides != nil && op.collides(u) {
		return s.collision(op.path), false
	}
	return adminResult{}, true
}

// writeFailed answers a write to path that the store refused with err,
// once no retry is left.
func (s *Server) writeFailed(path string, err error) adminResult {
	switch {
	case errors.Is(err, ErrStale):
		return failed(http.StatusConflict, "flags: %s: the store kept changing (%v); retry", path, err)
	case errors.Is(err, ErrUnavailable):
		s.log.Error("flags: admin write failed: the store is unavailable", "target", path, "err", err)
		return unavailable(path, err)
	case errors.Is(err, ErrConflict):
		return failed(http.StatusConflict, "%s", err.Error())
	case errors.Is(err, ErrTooLarge):
		return failed(http.StatusRequestEntityTooLarge, "flags: %s: %v", path, err)
	default:
		s.log.Error("flags: admin write failed", "target", path, "err", err)
		return failed(http.StatusInternalServerError, "flags: %s: store: %v", path, err)
	}
}

// collision answers a write whose key a hand edit changed meanwhile: 409
// with the key's ETag now. path is "flags.KEY" or "segments.KEY".
func (s *Server) collision(path string) adminResult {
	res := failed(http.StatusConflict, "flags: %s was changed in the store meanwhile (published at version %d): read it again and retry",
		path, s.cur.Load().version)
	kind, key, _ := strings.Cut(path, ".")
	if e := s.entries(Kind(strings.TrimSuffix(kind, "s")))[key]; e != nil {
		res.etag = versionTag(e.version)
	}
	return res
}

// prepareAdmin checks req against what is served and builds its patch. It
// returns a nil patch and the answer when the write cannot go ahead; else
// the answer carries the object's new ETag. writeMu must be held.
func (s *Server) prepareAdmin(req *adminRequest) (*prepared, adminResult) {
	path := req.path()
	e := s.entries(req.kind)[req.key]
	if res := checkPreconditions(req, e); res.status != 0 {
		return nil, res
	}
	if err := s.versionLeft(); err != nil {
		return nil, failed(http.StatusConflict, "%v", err)
	}
	var u update
	res := adminResult{status: http.StatusOK}
	if req.op != opPut && e == nil {
		return nil, failed(http.StatusNotFound, "flags: %s: no such %s", path, req.kind)
	}
	if req.op == opDelete {
		u.set(req.kind, req.key, nil)
	} else {
		body := req.body
		if req.op == opPatch {
			merged, err := mergePatch(e.raw, req.body)
			if err == nil {
				err = parseMember(req.kind, merged)
			}
			if err != nil {
				res := failed(http.StatusBadRequest, "flags: %s: the patched %s is refused: %v", path, req.kind, err)
				res.problems = []problemJSON{{Path: path, Message: err.Error()}}
				return nil, res
			}
			if req.role != RoleAdmin && !onlySwitches(e.raw, merged) {
				return nil, failed(http.StatusForbidden,
					"flags: %s: token %q has the role %s, which may only switch a flag on or off: send a patch of \"on\" alone", path, req.actor, req.role)
			}
			body = merged
		}
		if problems := s.wouldBreak(req.kind, req.key, body); len(problems) > 0 {
			res := failed(http.StatusBadRequest, "flags: %s is not valid: %s: %s", path, problems[0].Path, problems[0].Message)
			res.problems = problems
			return nil, res
		}
		v, err := s.nextVersion(req.kind, req.key, e, body)
		if err != nil {
			return nil, failed(http.StatusConflict, "%v", err)
		}
		u.set(req.kind, req.key, newEntry(body, v))
		res.etag = versionTag(v)
	}
	p, err := s.prepare(u)
	if err != nil {
		return nil, prepareFailed(s, path, err)
	}
	return p, res
}

// checkPreconditions applies If-Match and If-None-Match (SPEC §10) to the
// current object e (nil: absent): 412 when they fail, 400 when they cannot
// be read, a zero status when the write may go ahead.
func checkPreconditions(req *adminRequest, e *entry) adminResult {
	path := req.path()
	current := "it does not exist"
	if e != nil {
		current = "its version is " + versionTag(e.version)
	}
	fail := func(header, value string) adminResult {
		res := failed(http.StatusPreconditionFailed, "flags: %s: precondition failed: %s: %s, but %s", path, header, value, current)
		if e != nil {
			res.etag = versionTag(e.version)
		}
		return res
	}
	if req.ifMatch != "" {
		ok, err := tagsMatch(req.ifMatch, e, false)
		if err != nil {
			return failed(http.StatusBadRequest, "flags: %s: If-Match: %v", path, err)
		}
		if !ok {
			return fail("If-Match", req.ifMatch)
		}
	}
	if req.ifNoneMatch != "" {
		ok, err := tagsMatch(req.ifNoneMatch, e, true)
		if err != nil {
			return failed(http.StatusBadRequest, "flags: %s: If-None-Match: %v", path, err)
		}
		if ok {
			return fail("If-None-Match", req.ifNoneMatch)
		}
	}
	return adminResult{}
}

// versionTag is the ETag of a flag or segment at per-object version v.
func versionTag(v int64) string { return `"` + strconv.FormatInt(v, 10) + `"` }

// tagsMatch reports whether the entity-tag list header ("*" or quoted tags,
// comma separated) matches the object e (nil: absent): "*" matches any
// object, a tag matches its version. Weak tags (W/"3") match only when weak
// is set (If-None-Match; If-Match compares strongly, RFC 9110).
func tagsMatch(header string, e *entry, weak bool) (bool, error) {
	matched := false
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" {
			matched = matched || e != nil
			continue
		}
		isWeak := strings.HasPrefix(t, "W/")
		t = strings.TrimPrefix(t, "W/")
		if len(t) < 2 || t[0] != '"' || t[len(t)-1] != '"' {
			return false, fmt.Errorf("%q is not a quoted entity tag such as \"3\"", t)
		}
		if e != nil && (weak || !isWeak) && t == versionTag(e.version) {
			matched = true
		}
	}
	return matched, nil
}

// wouldBreak compiles the document as it would be with src under key and
// returns the problems of that flag or segment, plus any problem it would
// cause elsewhere (a prerequisite cycle, a chain too deep): the server
// publishes nothing malformed through its admin API.
func (s *Server) wouldBreak(kind Kind, key string, src json.RawMessage) []problemJSON {
	cur := s.cur.Load()
	patch := &rules.Patch{Version: cur.version + 1}
	one := map[string]json.RawMessage{key: src}
	if kind == KindSegment {
		patch.Segments = one
	} else {
		patch.Flags = one
	}
	before := map[string]bool{}
	for _, p := range s.snap.Problems() {
		before[p.Error()] = true
	}
	var out []problemJSON
	for _, p := range eval.CompileFrom(s.snap, cur.doc.Apply(patch)).Problems() {
		if (p.Kind == string(kind) && p.Key == key) || !before[p.Error()] {
			out = append(out, problemJSON{Path: p.Path(), Field: p.Field, Message: p.Err.Error()})
		}
	}
	return out
}

// changes lists u as a Commit's changes: flags then segments, each by key.
// bodyBytes is the request body of a single change (0 for several).
func (u *update) changes(bodyBytes int) []Change {
	out := make([]Change, 0, len(u.flags)+len(u.segments))
	for _, kind := range []Kind{KindFlag, KindSegment} {
		m := u.flags
		if kind == KindSegment {
			m = u.segments
		}
		for _, key := range slices.Sorted(maps.Keys(m)) {
			c := Change{Kind: kind, Key: key}
			if e := m[key]; e != nil {
				c.Value = e.raw
			}
			out = append(out, c)
		}
	}
	if len(out) == 1 {
		out[0].BodyBytes = bodyBytes
	}
	return out
}

// touches reports whether u sets or deletes key.
func (u *update) touches(kind Kind, key string) bool {
	m := u.flags
	if kind == KindSegment {
		m = u.segments
	}
	_, ok := m[key]
	return ok
}
