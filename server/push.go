package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/flagstream/flags/rules"
)

// handleDocument serves PUT /v1/admin/document (SPEC §10): the body, a
// whole flag document, replaces every flag and segment at once, as one
// patch at the next version. Flags and segments whose content does not
// change keep their version and are not in the patch; a push that changes
// nothing publishes nothing and answers the current version. The body's own
// "version" and per-flag versions are ignored: the server owns versions.
//
// A document that is invalid (not JSON, a wrong top level) or that holds
// anything malformed — or a null flag or segment — is refused with 400
// listing every problem; nothing changes. If-Match takes the snapshot's
// ETag ("EPOCH:VERSION", from GET /v1/flags): 412 unless that is still the
// one served, so a push cannot replace changes its author has not seen.
func (s *Server) handleDocument(w http.ResponseWriter, r *http.Request) {
	defer s.countAdminWrite(w)
	if !s.adminOn(w) {
		return
	}
	who, ok := s.authorize(w, r, RoleAdmin)
	if !ok {
		return
	}
	comment, ok := s.admitWithComment(w, r)
	if !ok {
		return
	}
	defer s.writes.Done()
	body, ok := s.readAdminBody(w, r, s.opts.MaxDocumentBytes, "document")
	if !ok {
		return
	}
	doc, problems := checkDocument(body)
	if len(problems) > 0 {
		msg := fmt.Sprintf("flags: document refused: %d problems; the first: %s: %s", len(problems), problems[0].Path, problems[0].Message)
		if len(problems) == 1 {
			msg = fmt.Sprintf("flags: document refused: %s: %s", problems[0].Path, problems[0].Message)
		}
		writeError(w, http.StatusBadRequest, msg, problems)
		return
	}
	writeResult(w, s.pushWrite(r.Context(), doc, r.Header.Get("If-Match"), auditMeta{actor: who.name, action: ActionPush, comment: comment}))
}

// checkDocument reads a pushed document and lists every problem that stops
// it from being served whole: it is invalid, a flag or segment is null, or
// one is malformed (each problem of each, as `flags lint` lists them).
func checkDocument(body []byte) (*rules.Document, []problemJSON) {
	doc, err := rules.ParseDocument(body)
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var problems []problemJSON // a wrong version, flags and segments: each
		for _, e := range joined.Unwrap() {
			problems = append(problems, problemJSON{Message: e.Error()})
		}
		return nil, problems
	}
	if err != nil {
		return nil, []problemJSON{{Message: err.Error()}}
	}
	var problems []problemJSON
	for _, kind := range []Kind{KindFlag, KindSegment} {
		m := doc.Flags
		if kind == KindSegment {
			m = doc.Segments
		}
		for _, key := range slices.Sorted(maps.Keys(m)) {
			if raw := m[key]; raw == nil || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
				problems = append(problems, problemJSON{Path: string(kind) + "s." + key,
					Message: "null: a pushed document holds what is served; leave a key out to delete it"})
				delete(m, key)
			}
		}
	}
	for _, p := range rules.Validate(doc) {
		problems = append(problems, problemJSON{Path: p.Path(), Field: p.Field, Message: p.Err.Error()})
	}
	return doc, problems
}

// pushWrite makes doc the served content: stored durably, then published.
// A hand edit the store reports meanwhile is loaded and published first;
// when the push would change what the edit wrote (a key the edit set,
// deleted or added that doc holds otherwise), it is refused with 409
// rather than lose the edit (SPEC §13); else it applies on top. With
// ifMatch naming the version before the edit: 412.
func (s *Server) pushWrite(ctx context.Context, doc *rules.Document, ifMatch string, meta auditMeta) adminResult {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.isClosed() {
		return failed(http.StatusServiceUnavailable, "%s", ErrClosed.Error())
	}
	return s.storeWrite(ctx, writeOp{
		path:     "document",
		prepare:  func() (*prepared, adminResult) { return s.preparePush(doc, ifMatch) },
		collides: func(u update) bool { return pushUndoes(doc, u) },
		replace:  true,
		meta:     meta,
		logAttrs: []any{"action", ActionPush, "actor", meta.actor},
	})
}

// pushUndoes reports whether pushing doc would change what the hand edit
// u wrote: a key u set that doc holds with other content or not at all, or
// a key u deleted that doc holds.
func pushUndoes(doc *rules.Document, u update) bool {
	undoes := func(pushed map[string]json.RawMessage, edited map[string]*entry) bool {
		for key, e := range edited {
			raw, ok := pushed[key]
			if e == nil && ok || e != nil && (!ok || contentSum(raw) != e.contentSum()) {
				return true
			}
		}
		return false
	}
	return undoes(doc.Flags, u.flags) || undoes(doc.Segments, u.segments)
}

// preparePush checks If-Match and builds the patch from what is served to
// doc. writeMu must be held.
func (s *Server) preparePush(doc *rules.Document, ifMatch string) (*prepared, adminResult) {
	cur := s.cur.Load()
	if ifMatch != "" {
		ok, err := snapshotMatches(ifMatch, cur.etag)
		if err != nil {
			return nil, failed(http.StatusBadRequest, "flags: document: If-Match: %v", err)
		}
		if !ok {
			res := failed(http.StatusPreconditionFailed, "flags: document: precondition failed: If-Match: %s, but the version served is %s", ifMatch, cur.etag)
			res.etag = cur.etag
			return nil, res
		}
	}
	var u update
	if err := s.diffKind(KindFlag, doc.Flags, &u); err != nil {
		return nil, prepareFailed(s, "document", err)
	}
	if err := s.diffKind(KindSegment, doc.Segments, &u); err != nil {
		return nil, prepareFailed(s, "document", err)
	}
	if u.empty() {
		data := encodePatch(&rules.Patch{Version: cur.version})
		return &prepared{st: cur, data: data}, adminResult{status: http.StatusOK, etag: cur.etag}
	}
	p, err := s.prepare(u)
	if err != nil {
		return nil, prepareFailed(s, "document", err)
	}
	return p, adminResult{status: http.StatusOK, etag: p.st.etag}
}

// prepareFailed answers a change that could not be prepared.
func prepareFailed(s *Server, target string, err error) adminResult {
	switch {
	case errors.Is(err, ErrTooLarge):
		return failed(http.StatusRequestEntityTooLarge, "%v", err)
	case errors.Is(err, ErrVersionExhausted):
		return failed(http.StatusConflict, "%v", err)
	case errors.Is(err, rules.ErrInvalidDocument):
		return failed(http.StatusBadRequest, "flags: %s: %v", target, err)
	}
	s.log.Error("flags: admin write failed", "target", target, "err", err)
	return failed(http.StatusInternalServerError, "%v", err)
}

// snapshotMatches applies If-Match to the snapshot's ETag: "*" or a list of
// quoted tags, compared strongly.
func snapshotMatches(header, etag string) (bool, error) {
	matched := false
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" {
			matched = true
			continue
		}
		if len(t) < 2 || t[0] != '"' || t[len(t)-1] != '"' {
			return false, fmt.Errorf("%q is not a quoted entity tag such as \"EPOCH:VERSION\"", t)
		}
		matched = matched || t == etag
	}
	return matched, nil
}
