package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/flagstream/flags/internal/eval"
	"github.com/flagstream/flags/rules"
)

// Ledger is a Store that owns the version history, as a database shared by
// several server replicas does (SPEC §10). The Server detects it and then
// lets the store, not itself, decide what is published at which version:
//
//   - Versions come from one store-wide counter. The Server proposes every
//     change as the version after the last one it has published
//     (Commit.Version); Write commits the change, its audit entries and the
//     counter's step in one transaction if and only if that is the
//     counter's next value, and otherwise returns ErrStale (another replica
//     wrote first): the Server then catches up with Changes, checks the
//     request again (If-Match included) on the content it now serves, and
//     proposes it anew. So versions are gapless, and every replica serves
//     the same content at the same version.
//   - Epoch is the store's identity, the same on every replica, and the
//     Server's epoch (Options.Epoch must be empty).
//   - Watch notifies when another replica committed a change (LISTEN/NOTIFY,
//     or polling the counter), within 500 ms; the Server then applies
//     Changes since its version, one patch per commit, each at its own
//     version and with the per-object versions the writer gave it, without
//     auditing them again (the writer did).
//   - Changes is the change log: a client that fails over from another
//     replica with a Last-Event-ID of this epoch is replayed what it missed
//     from it when this replica's own ring does not reach back that far.
//     When the log no longer holds a version the Server needs, it returns
//     ErrHistoryGone: the Server loads the whole content and publishes it
//     as one patch at the store's version (clients see the gap and take a
//     snapshot).
//   - Audit reads the audit table.
//   - A history that goes back (a database restored from a backup: the
//     counter is below the version served) is another lineage: Changes
//     returns ErrHistoryReset, and the Server has RenewEpoch name it anew
//     (one replica renews it, the others find the new epoch). A Server
//     that finds the store's epoch changed, at any catch-up, serves the
//     store's whole content under it and ends every stream, whose clients
//     reconnect with the old epoch and are sent a snapshot: no client can
//     take the new lineage for its own.
//
// Errors that mean the store cannot be reached should wrap ErrUnavailable:
// admin writes then answer 503 with Retry-After, while the Server keeps
// serving its last snapshot and streams, and catches up (every second, and
// on the next notification) once the store answers again. A Ledger should
// implement Pinger for GET /readyz.
//
// Publish on a Server over a Ledger writes its changes through Write (action
// reload, actor ActorProgram), since the store is the source of truth of
// every replica.
type Ledger interface {
	Store
	// Epoch returns the store's identity: 1-64 characters of A-Z a-z 0-9 .
	// _ -, changed only when the history does not continue (a store reset).
	Epoch(ctx context.Context) (string, error)
	// RenewEpoch gives the store a new epoch if its epoch is still old,
	// and returns the epoch in force: the new one, or the one another
	// replica renewed it to first.
	RenewEpoch(ctx context.Context, old string) (string, error)
	// Changes returns the commits published after version after, oldest
	// first, at most limit of them, each with its Version and its Changes
	// (values carrying their per-object versions; Audit may be left out).
	// It returns an error wrapping ErrHistoryGone when the log no longer
	// holds version after+1, and one wrapping ErrHistoryReset when after
	// is beyond the store's version (its history went back).
	Changes(ctx context.Context, after int64, limit int) ([]*Commit, error)
}

// Errors of a Ledger.
var (
	// ErrHistoryGone reports that a change log no longer reaches back to
	// the version asked for.
	ErrHistoryGone = errors.New("flags: the change log no longer holds that version")
	// ErrHistoryReset reports a store whose version is below one it
	// published before: its history went back (a restored backup) and
	// does not continue the one served.
	ErrHistoryReset = errors.New("flags: the store's history went back")
	// ErrUnavailable reports a store that cannot be reached: admin writes
	// answer it with 503.
	ErrUnavailable = errors.New("flags: store unavailable")
)

// catchUpBatch is how many commits one call of Changes asks for.
const catchUpBatch = 1000

// catchUp applies the commits another replica made since the version
// served, each as its own patch at its own version; when the log does not
// reach back, it loads the whole content and publishes it at the store's
// version. It returns what changed. writeMu must be held.
func (s *Server) catchUp(ctx context.Context) (update, error) {
	epoch, err := s.ledger.Epoch(ctx)
	if err != nil {
		return update{}, fmt.Errorf("flags: store: epoch: %w", err)
	}
	if epoch != s.cur.Load().epoch { // another replica found the history reset
		return s.rebase(ctx, epoch)
	}
	var all update
	for {
		from := s.cur.Load().version
		commits, err := s.ledger.Changes(ctx, from, catchUpBatch)
		if errors.Is(err, ErrHistoryReset) {
			if epoch, err = s.ledger.RenewEpoch(ctx, epoch); err != nil {
				return all, fmt.Errorf("flags: store: renewing the epoch of a history that went back: %w", err)
			}
			u, err := s.rebase(ctx, epoch)
			all.merge(u)
			return all, err
		}
		if errors.Is(err, ErrHistoryGone) || (err == nil && len(commits) > 0 && commits[0].Version != from+1) {
			u, err := s.resync(ctx)
			all.merge(u)
			return all, err
		}
		if err != nil {
			return all, fmt.Errorf("flags: store: change log: %w", err)
		}
		for _, c := range commits {
			u, err := s.applyCommit(c)
			if err != nil {
				return all, err
			}
			all.merge(u)
		}
		if len(commits) < catchUpBatch {
			return all, nil
		}
	}
}

// applyCommit publishes c, another replica's commit of the version after
// the one served, as its own patch. writeMu must be held.
func (s *Server) applyCommit(c *Commit) (update, error) {
	if c.Version != s.cur.Load().version+1 {
		return update{}, fmt.Errorf("flags: store: change log: version %d follows %d", c.Version, s.cur.Load().version)
	}
	var u update
	for _, ch := range c.Changes {
		if ch.Value == nil {
			if s.entries(ch.Kind)[ch.Key] != nil {
				u.set(ch.Kind, ch.Key, nil)
			}
			continue
		}
		if err := parseMember(ch.Kind, ch.Value); err != nil {
			return update{}, fmt.Errorf("flags: store: change log: version %d: %ss.%s: %w", c.Version, ch.Kind, ch.Key, err)
		}
		u.set(ch.Kind, ch.Key, servedEntry(ch.Value))
	}
	p, err := s.prepare(u) // at the version after the one served: c.Version
	if err != nil {
		return update{}, fmt.Errorf("flags: store: change log: version %d: %w", c.Version, err)
	}
	s.apply(p)
	s.log.Info("flags: published", "cause", "store", "version", p.st.version, "flags", len(u.flags), "segments", len(u.segments))
	return u, nil
}

// resync loads the whole content of a Ledger whose change log does not
// reach back to the version served, and publishes the difference as one
// patch at the store's version. The replay ring is emptied: no stream can
// resume across the gap. writeMu must be held.
func (s *Server) resync(ctx context.Context) (update, error) {
	doc, err := s.store.Load(ctx)
	if err != nil {
		return update{}, fmt.Errorf("flags: store: load: %w", err)
	}
	cur := s.cur.Load()
	if doc.Version <= cur.version {
		return update{}, fmt.Errorf("flags: store: its version %d is not after the %d served", doc.Version, cur.version)
	}
	var u update
	for _, kind := range []Kind{KindFlag, KindSegment} {
		next := doc.Flags
		if kind == KindSegment {
			next = doc.Segments
		}
		served := s.entries(kind)
		for key, raw := range next {
			if e := served[key]; e != nil && e.contentSum() == contentSum(raw) && e.version == objectVersion(raw) {
				continue
			}
			if err := parseMember(kind, raw); err != nil {
				return update{}, fmt.Errorf("flags: store: %ss.%s: %w", kind, key, err)
			}
			u.set(kind, key, newEntry(raw, objectVersion(raw)))
		}
		for key := range served {
			if _, ok := next[key]; !ok {
				u.set(kind, key, nil)
			}
		}
	}
	p, err := s.prepareAt(u, doc.Version)
	if err != nil {
		return update{}, err
	}
	s.mu.Lock()
	s.clearRingLocked()
	s.mu.Unlock()
	s.apply(p)
	s.log.Warn("flags: the store's change log does not reach back to the version served; loaded its whole content",
		"from", cur.version, "version", doc.Version)
	return u, nil
}

// rebase serves the store's whole content under epoch, a lineage that does
// not continue the one served (a restored backup): entries, tombstones and
// the replay ring start again from the store, and every stream ends, so
// that its client reconnects with the old epoch and is sent a snapshot.
// It returns every key that changed. writeMu must be held.
func (s *Server) rebase(ctx context.Context, epoch string) (update, error) {
	doc, err := s.store.Load(ctx)
	if err != nil {
		return update{}, fmt.Errorf("flags: store: load: %w", err)
	}
	oldFlags, oldSegments := s.flags, s.segments
	s.flags, s.segments = map[string]*entry{}, map[string]*entry{}
	served := &rules.Document{Version: doc.Version, Flags: map[string]json.RawMessage{}, Segments: map[string]json.RawMessage{}}
	s.addEntries(KindFlag, doc.Flags, served.Flags) // as at the start: loadFirst
	s.addEntries(KindSegment, doc.Segments, served.Segments)
	st, err := s.newState(served, epoch)
	if err == nil {
		err = parseMembers(served)
	}
	if err != nil {
		s.flags, s.segments = oldFlags, oldSegments
		return update{}, fmt.Errorf("flags: store: %w", err)
	}
	var u update // every key of either lineage: what listeners must look at again
	for kind, m := range map[Kind]map[string]*entry{KindFlag: oldFlags, KindSegment: oldSegments} {
		for key := range m {
			u.set(kind, key, nil)
		}
	}
	for _, kind := range []Kind{KindFlag, KindSegment} {
		for key, e := range s.entries(kind) {
			u.set(kind, key, e)
		}
	}
	s.tombs, s.tombOrder = map[string]tomb{}, nil
	s.snap = eval.Compile(served)
	old := s.cur.Load()
	s.mu.Lock()
	s.clearRingLocked()
	s.cur.Store(st)
	for sub := range s.subs {
		s.removeLocked(sub, "history reset")
		sub.kick()
	}
	s.mu.Unlock()
	s.log.Warn("flags: the store's history does not continue the one served (a restored backup?): serving its content under a new epoch; streams end and resume with a snapshot",
		"epoch", old.epoch, "version", old.version, "newEpoch", epoch, "newVersion", st.version)
	return u, nil
}

// clearRingLocked empties the replay ring: no stream can resume across
// what follows. mu must be held.
func (s *Server) clearRingLocked() {
	for i := range s.ring {
		s.ring[i] = nil
	}
	s.ring, s.ringBytes = s.ring[:0], 0
}

// merge adds the changes of v to u.
func (u *update) merge(v update) {
	for k, e := range v.flags {
		u.set(KindFlag, k, e)
	}
	for k, e := range v.segments {
		u.set(KindSegment, k, e)
	}
}

// ledgerReplay fetches from the Ledger's change log the patches that follow
// lastID, when it names this epoch and a version the replay ring no longer
// reaches: a client failing over from another replica resumes here with
// patches, not a snapshot. nil when it cannot (then a snapshot is sent).
// At most Options.ReplayPatches patches and Options.ReplayBytes bytes.
func (s *Server) ledgerReplay(ctx context.Context, lastID string) []*event {
	if s.ledger == nil {
		return nil
	}
	st := s.cur.Load()
	v, ok := s.eventVersion(lastID)
	cur := st.version
	if !ok || v >= cur || cur-v > int64(s.opts.ReplayPatches) {
		return nil
	}
	s.mu.Lock()
	inRing := len(s.ring) > 0 && s.ring[0].version <= v+1
	s.mu.Unlock()
	if inRing {
		return nil
	}
	commits, err := s.ledger.Changes(ctx, v, int(cur-v))
	if err != nil {
		s.log.Info("flags: stream: resuming from the store's change log failed; sending a snapshot", "lastEventID", lastID, "err", err)
		return nil
	}
	return s.commitEvents(commits, v+1, st.epoch)
}

// commitEvents makes the patch events of commits, which must be the
// versions from first on without a gap and take at most
// Options.ReplayBytes on the wire; nil when they do not. Their ids name
// epoch.
func (s *Server) commitEvents(commits []*Commit, first int64, epoch string) []*event {
	var out []*event
	var size int64
	for k, c := range commits {
		if c.Version != first+int64(k) {
			return nil
		}
		ev := &event{version: c.Version, wire: patchWire(epoch, c.Version, encodePatch(commitPatch(c)))}
		if size += int64(len(ev.wire)); size > s.opts.ReplayBytes {
			return nil
		}
		out = append(out, ev)
	}
	return out
}

// commitPatch is the patch that publishes c's changes.
func commitPatch(c *Commit) *rules.Patch {
	p := &rules.Patch{Version: c.Version, Flags: map[string]json.RawMessage{}, Segments: map[string]json.RawMessage{}}
	for _, ch := range c.Changes {
		m := p.Flags
		if ch.Kind == KindSegment {
			m = p.Segments
		}
		m[ch.Key] = ch.Value
	}
	return p
}

// unavailable answers a write the store could not make because it cannot
// be reached. The answer does not hold the store's error, which names its
// host, database and user: the server's log does.
func unavailable(target string, _ error) adminResult {
	res := failed(http.StatusServiceUnavailable, "flags: %s: %s; retry", target, storeUnavailable)
	res.retryAfter = "1"
	return res
}

// storeUnavailable is what answers say of a store that cannot be reached;
// its error goes to the log (storeDown), not to clients.
const storeUnavailable = "the store is unavailable"

// storeDownEvery is how often storeDown logs at most: readiness probes and
// SDKs posting events ask many times a second during an outage.
const storeDownEvery = 10 * time.Second

// writeStoreDown answers a request about what (events, audit) that the
// store could not serve because it cannot be reached: 503, Retry-After,
// and the error in the log only.
func (s *Server) writeStoreDown(w http.ResponseWriter, what string, err error) {
	s.storeDown(what, err)
	w.Header().Set("Retry-After", "1")
	writeError(w, http.StatusServiceUnavailable, "flags: "+what+": "+storeUnavailable+"; retry", nil)
}

// storeDown logs that the store could not be reached, with its error, at
// most once every storeDownEvery.
func (s *Server) storeDown(where string, err error) {
	now := time.Now().UnixNano()
	last := s.storeDownLogged.Load()
	if now-last < int64(storeDownEvery) || !s.storeDownLogged.CompareAndSwap(last, now) {
		return
	}
	s.log.Warn("flags: the store is unavailable", "where", where, "err", err)
}
