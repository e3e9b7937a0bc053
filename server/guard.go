package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/flagstream/flags/experiment"
	"github.com/flagstream/flags/internal/eval"
)

// watchGuards checks the guarded rollouts every GuardInterval until ctx is
// done (SPEC §9), after reading the events other replicas received.
func (s *Server) watchGuards(ctx context.Context) {
	everyTick(ctx, s.opts.GuardInterval, func() {
		s.events.tail(ctx, s)
		s.checkGuards(ctx)
	})
}

// guarded is a flag whose guard is armed, as served when it was checked.
type guarded struct {
	flag    *eval.Flag
	raw     json.RawMessage
	version int64
}

// checkGuards checks every armed guard of a flag that is on, and rolls back
// those that trip.
func (s *Server) checkGuards(ctx context.Context) {
	var todo []guarded
	s.writeMu.Lock()
	for _, f := range s.snap.Flags() {
		if f.Err != nil || !f.On || !f.Guard.Armed() {
			continue
		}
		if e := s.flags[f.Key]; e != nil {
			todo = append(todo, guarded{flag: f, raw: e.raw, version: e.version})
		}
	}
	s.writeMu.Unlock()
	for _, g := range todo {
		info, _ := experiment.FlagInfoOf(g.flag.Key, g.raw) // g.flag is well formed
		rep := s.events.agg.Report(info)
		d := experiment.CheckGuard(rep, g.flag.Guard)
		if !d.Trip {
			continue
		}
		if err := s.tripGuard(ctx, g, d); err != nil {
			s.log.Error("flags: guard: could not roll back", "flag", g.flag.Key, "err", err)
			continue
		}
		s.log.Warn("flags: guard tripped: flag rolled back to its control", "flag", g.flag.Key, "why", d.Reason)
		s.stats.guardTrip(g.flag.Key)
		if s.opts.GuardHook != nil {
			s.opts.GuardHook(g.flag.Key)
		}
	}
}

// tripGuard writes the rollback of SPEC §9 as actor guard: every rollout of
// the flag (fallthrough and rules; targets stay) serves the control, and
// the guard records why. It is made only if the flag has not changed since
// it was checked (If-Match); an edit in between wins, and the guard is
// checked again on the new version.
func (s *Server) tripGuard(ctx context.Context, g guarded, d experiment.Decision) error {
	body, err := rolledBack(g.raw, g.flag.Guard.Control, d, s.now())
	if err != nil {
		return err
	}
	req := &adminRequest{kind: KindFlag, key: g.flag.Key, op: opPut, body: body, bodyBytes: len(body),
		ifMatch: versionTag(g.version), actor: ActorGuard, role: RoleAdmin, comment: truncateComment(d.Reason), as: ActionGuard}
	res := s.adminWrite(ctx, req)
	switch res.status {
	case http.StatusOK:
		return nil
	case http.StatusPreconditionFailed:
		return nil // edited meanwhile: the next check looks at the new version
	}
	return fmt.Errorf("%d %s", res.status, res.msg)
}

// rolledBack returns the flag's JSON with every rollout replaced by the
// control and guard.tripped recorded.
func rolledBack(raw json.RawMessage, control int, d experiment.Decision, now time.Time) (json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // numbers kept as written
	var flag map[string]any
	if err := dec.Decode(&flag); err != nil {
		return nil, fmt.Errorf("flags: guard: %w", err)
	}
	serveControl := func(serve any) any {
		if m, ok := serve.(map[string]any); ok {
			if _, ok := m["rollout"]; ok {
				return map[string]any{"variation": control}
			}
		}
		return serve
	}
	if ft, ok := flag["fallthrough"]; ok {
		flag["fallthrough"] = serveControl(ft)
	}
	if rs, ok := flag["rules"].([]any); ok {
		for _, r := range rs {
			if rule, ok := r.(map[string]any); ok {
				if serve, ok := rule["serve"]; ok {
					rule["serve"] = serveControl(serve)
				}
			}
		}
	}
	guard, ok := flag["guard"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("flags: guard: the flag has no guard object")
	}
	guard["tripped"] = map[string]any{
		"at":     now.UTC().Format(time.RFC3339),
		"pValue": d.PValue,
		"units":  d.Units,
		"rates":  d.Rates,
	}
	out, err := json.Marshal(flag)
	if err != nil {
		return nil, fmt.Errorf("flags: guard: %w", err)
	}
	return out, nil
}

// truncateComment keeps a guard's reason within MaxCommentBytes.
func truncateComment(s string) string {
	if len(s) <= MaxCommentBytes {
		return s
	}
	return s[:MaxCommentBytes]
}
