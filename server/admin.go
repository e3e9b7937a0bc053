package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/flagstream/flags/rules"
)

// adminHandler serves PUT (del false) or DELETE of /v1/admin/flags/{key} or
// /v1/admin/segments/{key}. A success answers 200 with the data of the patch
// it published: {"version":N,"flags":{...},"segments":{...}}.
func (s *Server) adminHandler(kind Kind, del bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.hasAdm {
			writeError(w, http.StatusNotFound, "flags: not found", nil)
			return
		}
		if !s.authorize(w, r, true) {
			return
		}
		key := r.PathValue("key")
		path := string(kind) + "s." + key
		if !rules.ValidKey(key) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("flags: %s: invalid key", path), []problemJSON{{
				Path: path, Field: "key",
				Message: fmt.Sprintf("invalid key %q: want 1-%d characters of A-Z a-z 0-9 . _ -", key, rules.MaxKeyLength),
			}})
			return
		}
		var body []byte
		if !del {
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.opts.WriteTimeout))
			var err error
			body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes))
			var tooBig *http.MaxBytesError
			switch {
			case errors.As(err, &tooBig):
				writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("flags: body larger than %d bytes", tooBig.Limit), nil)
				return
			case err != nil:
				writeError(w, http.StatusBadRequest, "flags: reading body: "+err.Error(), nil)
				return
			}
			var v any
			if err := json.Unmarshal(body, &v); err != nil {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("flags: %s: body is not JSON: %v", path, err),
					[]problemJSON{{Path: path, Message: "not JSON: " + err.Error()}})
				return
			}
		}
		status, resp, problems := s.adminWrite(r.Context(), kind, key, body, del)
		if status != http.StatusOK {
			writeError(w, status, resp, problems)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, resp+"\n")
	}
}

// adminWrite validates, stores durably and publishes one admin change. It
// returns the HTTP status and, for 200, the patch data, else an error
// message (and the problems for 400).
func (s *Server) adminWrite(ctx context.Context, kind Kind, key string, body []byte, del bool) (int, string, []problemJSON) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.isClosed() {
		return http.StatusServiceUnavailable, ErrClosed.Error(), nil
	}
	path := string(kind) + "s." + key
	e := s.entries(kind)[key]
	var u update
	if del {
		if e == nil {
			return http.StatusNotFound, fmt.Sprintf("flags: %s: no such %s", path, kind), nil
		}
		u.set(kind, key, nil)
	} else {
		src := compact(body)
		if problems := s.wouldBreak(kind, key, src); len(problems) > 0 {
			return http.StatusBadRequest, fmt.Sprintf("flags: %s is not valid: %s: %s",
				path, problems[0].Path, problems[0].Message), problems
		}
		u.set(kind, key, newEntry(src, s.nextVersion(kind, key, e, src)))
	}
	p, err := s.prepare(u)
	if errors.Is(err, ErrTooLarge) {
		return http.StatusRequestEntityTooLarge, err.Error(), nil
	}
	if err != nil {
		s.log.Error("flags: admin write failed", "key", key, "err", err)
		return http.StatusInternalServerError, err.Error(), nil
	}
	c := Change{Kind: kind, Key: key, Version: p.st.version}
	if !del {
		c.Value = p.u.entry(kind, key).raw
	}
	if err := s.store.Write(ctx, c); err != nil {
		if errors.Is(err, ErrConflict) {
			return http.StatusConflict, err.Error(), nil
		}
		s.log.Error("flags: admin write failed", "key", key, "err", err)
		return http.StatusInternalServerError, fmt.Sprintf("flags: %s: store: %v", path, err), nil
	}
	s.apply(p)
	s.log.Info("flags: published", "cause", "admin", "version", p.st.version, string(kind), key, "deleted", del)
	return http.StatusOK, string(p.data), nil
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
	for _, p := range rules.CompileFrom(s.snap, cur.doc.Apply(patch)).Problems() {
		if (p.Kind == string(kind) && p.Key == key) || !before[p.Error()] {
			out = append(out, problemJSON{Path: p.Path(), Field: p.Field, Message: p.Err.Error()})
		}
	}
	return out
}

func (u *update) entry(kind Kind, key string) *entry {
	if kind == KindSegment {
		return u.segments[key]
	}
	return u.flags[key]
}
