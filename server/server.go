package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flagstream/flags/internal/eval"
	"github.com/flagstream/flags/rules"
)

// Defaults of Options.
const (
	DefaultHeartbeatInterval = 10 * time.Second // SPEC §5 asks at least every 15 s: a margin for a busy host
	DefaultWriteTimeout      = 10 * time.Second
	DefaultMaxBodyBytes      = 1 << 20
	DefaultMaxDocumentBytes  = 64 << 20
	DefaultReplayPatches     = 10000
	DefaultReplayBytes       = 64 << 20
	DefaultSubscriberQueue   = 64
)

// Options configures a Server. The zero value is usable: no tokens (reads
// open, admin API off) and the defaults above.
type Options struct {
	// Token, when set, is required (as "Authorization: Bearer TOKEN") to
	// read the flags and the stream.
	Token string
	// AdminToken, when set, turns the admin API on and authorizes it; it
	// also authorizes reads. Without it the admin paths answer 404.
	AdminToken string
	// PreviousTokens are also accepted for reads, so that the SDK token can
	// be rotated without refusing clients that still hold an old one (a
	// refused token is final for a client): deploy the new Token with the
	// old one here, move the clients over, then drop it.
	PreviousTokens []string
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
	// AccessLogger receives the access log: one Info record per request,
	// written when the request ends (a stream when it closes). nil: Logger.
	AccessLogger *slog.Logger
	// HeartbeatInterval is the time between ": ping" comments on a stream.
	HeartbeatInterval time.Duration
	// WriteTimeout bounds every write of up to 64 KiB to a client (a stream
	// subscriber that stops reading is dropped after it) and the reading of
	// an admin request body.
	WriteTimeout time.Duration
	// MaxBodyBytes is the largest admin request body (413 above).
	MaxBodyBytes int64
	// MaxDocumentBytes is the largest document, and so the largest event,
	// the server serves; content that would exceed it is refused (413 for
	// admin writes, ErrTooLarge for Publish, logged for store reloads).
	MaxDocumentBytes int64
	// ReplayPatches and ReplayBytes bound the replay window: the ring of
	// recent patches kept to resume streams from a Last-Event-ID (older
	// ones get a snapshot), by count and by their bytes on the wire,
	// whichever is reached first. Deleted keys' tombstones last as long as
	// the patch that deleted them is in the window, so the server's memory
	// does not grow with the number of changes (SPEC §13).
	ReplayPatches int
	ReplayBytes   int64
	// SubscriberQueue is how many events may wait for one subscriber; one
	// that falls further behind is dropped (and resumes when it reconnects).
	SubscriberQueue int
	// Tokens are more tokens, each with a name and a role (SPEC §10); see
	// ParseTokens. Their names must differ from each other and from those
	// of Token ("token"), PreviousTokens ("previous-N") and AdminToken
	// ("admin"), and their secrets too.
	Tokens []Token
	// TokensFile is a tokens file (ParseTokens) whose tokens are accepted
	// as well. It is read at New (an error makes New fail) and again every
	// TokensPollInterval (DefaultTokensPollInterval); a change that does not
	// read or parse, or clashes with the other tokens, is logged and the
	// previous tokens stay.
	TokensFile         string
	TokensPollInterval time.Duration
	// Epoch names this server's version history in ETags and event ids; by
	// default a random one. Use 1-64 characters of A-Z a-z 0-9 . _ -, and a
	// new value whenever the history does not continue.
	Epoch string

	// GuardInterval is how often guarded rollouts are checked (SPEC §9:
	// at least every 5 s); default DefaultGuardInterval.
	GuardInterval time.Duration
	// EventsHook, when set, is called after every batch of events that
	// POST /v1/events accepted, with its counts (metrics).
	EventsHook func(accepted, rejected int)
	// GuardHook, when set, is called after a guard rolled its flag back.
	GuardHook func(flag string)
	// Metrics, when set, is served at GET /metrics to any token that may
	// read the flags (package server/promexport makes one for Prometheus).
	Metrics http.Handler
	// Console, when set, is served at /ui/ (package server/console makes
	// it: the web console of SPEC §11).
	Console http.Handler
	// Now is the server's clock for events (the receive time that clamps
	// them) and guard trips; default time.Now.
	Now func() time.Time
}

// DefaultGuardInterval is how often guards are checked by default.
const DefaultGuardInterval = 2 * time.Second

// resolve checks the options and fills in their defaults.
func (o *Options) resolve() error {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.AccessLogger == nil {
		o.AccessLogger = o.Logger
	}
	if len(o.PreviousTokens) > 0 && o.Token == "" {
		return fmt.Errorf("flags: server: PreviousTokens without a Token")
	}
	for i, t := range o.PreviousTokens {
		if t == "" {
			return fmt.Errorf("flags: server: PreviousTokens[%d] is empty", i)
		}
	}
	if err := o.resolveLimits(); err != nil {
		return err
	}
	return o.resolveEpoch()
}

// resolveLimits refuses negative durations, sizes and counts, and sets
// those left zero to their defaults.
func (o *Options) resolveLimits() error {
	durations := []struct {
		d   *time.Duration
		def time.Duration
		n   string
	}{{&o.HeartbeatInterval, DefaultHeartbeatInterval, "HeartbeatInterval"}, {&o.WriteTimeout, DefaultWriteTimeout, "WriteTimeout"},
		{&o.TokensPollInterval, DefaultTokensPollInterval, "TokensPollInterval"},
		{&o.GuardInterval, DefaultGuardInterval, "GuardInterval"}}
	for _, d := range durations {
		if !orDefault(d.d, d.def) {
			return fmt.Errorf("flags: server: negative %s", d.n)
		}
	}
	sizes := []struct {
		v   *int64
		def int64
		n   string
	}{{&o.MaxBodyBytes, DefaultMaxBodyBytes, "MaxBodyBytes"}, {&o.MaxDocumentBytes, DefaultMaxDocumentBytes, "MaxDocumentBytes"}, {&o.ReplayBytes, DefaultReplayBytes, "ReplayBytes"}}
	for _, s := range sizes {
		if !orDefault(s.v, s.def) {
			return fmt.Errorf("flags: server: negative %s", s.n)
		}
	}
	if !orDefault(&o.ReplayPatches, DefaultReplayPatches) || !orDefault(&o.SubscriberQueue, DefaultSubscriberQueue) {
		return fmt.Errorf("flags: server: negative ReplayPatches or SubscriberQueue")
	}
	return nil
}

// orDefault sets the option *v to def when it is zero, and reports whether
// it is valid: not negative.
func orDefault[T int | int64 | time.Duration](v *T, def T) bool {
	if *v < 0 {
		return false
	}
	if *v == 0 {
		*v = def
	}
	return true
}

// resolveEpoch checks the Epoch given, or makes a random one.
func (o *Options) resolveEpoch() error {
	if o.Epoch != "" {
		if len(o.Epoch) > 64 || !rules.ValidKey(o.Epoch) {
			return fmt.Errorf("flags: server: invalid Epoch %q: want 1-64 characters of A-Z a-z 0-9 . _ -", o.Epoch)
		}
		return nil
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Errorf("flags: server: epoch: %w", err)
	}
	o.Epoch = hex.EncodeToString(b[:])
	return nil
}

// state is what readers see: swapped whole on every publish.
type state struct {
	epoch   string // the version history's name (see Server.Epoch)
	version int64
	doc     *rules.Document
	body    []byte // doc encoded
	id      string // EPOCH:VERSION
	etag    string // `"EPOCH:VERSION"`
}

// Server serves SPEC §5 (the flags, the stream, the admin API) over a Store.
// It is an http.Handler: mount it at the root of an http.Server or an
// httptest.Server. Close it to end its streams and stop watching the store.
type Server struct {
	store  Store
	ledger Ledger // store, when it owns the version history; else nil
	opts   Options
	log    *slog.Logger
	mux    *http.ServeMux

	// tokens is every token accepted, swapped whole when the tokens file
	// changes.
	tokens atomic.Pointer[tokenSet]

	access *slog.Logger

	// writeMu serializes every change: Publish, admin writes, store reloads.
	writeMu   sync.Mutex
	flags     map[string]*entry // guarded by writeMu
	segments  map[string]*entry // guarded by writeMu
	tombs     map[string]tomb   // deleted keys, by tombKey; writeMu
	tombOrder []tombRef         // tombs in deletion order; writeMu
	snap      *eval.Snapshot    // compiled served document; writeMu

	// noDeadline reports once that streams cannot set write deadlines.
	noDeadline sync.Once

	cur atomic.Pointer[state]

	// mu guards the subscribers, the replay ring, closing and closed.
	mu        sync.Mutex
	subs      map[*subscriber]struct{}
	ring      []*event
	ringBytes int64
	closing   bool           // Close has begun: no new streams or admin writes
	closed    bool           // Close has ended the streams
	streams   sync.WaitGroup // running stream handlers
	writes    sync.WaitGroup // admin requests admitted (admitWrite)

	stopWatch context.CancelFunc
	watchDone chan struct{}
	closeOnce sync.Once

	// reloadFailed is set while a reload found a change that the store
	// could not record; retryReloads tries it again.
	reloadFailed atomic.Bool

	// storeDownLogged is when storeDown last logged (Unix ns).
	storeDownLogged atomic.Int64

	// events holds what the event log says: experiments and summaries.
	events *eventState
	// stats counts what Stats reports.
	stats stats

	// onRemove, when set (tests), is called whenever a subscriber leaves.
	onRemove func(reason string)
	// onAdmit, when set (tests), is called whenever an admin write is
	// admitted.
	onAdmit func()
}

// New returns a Server serving store's content. It loads the store once
// (an error is returned, wrapped, when that fails or the content exceeds
// Options.MaxDocumentBytes), then watches it for changes until Close. The
// snapshot version starts at the loaded document's version or, over a
// FileStore, at the greatest version in its audit log when that is
// greater, so that the log stays in version order across restarts.
func New(store Store, opts Options) (*Server, error) {
	if store == nil {
		return nil, fmt.Errorf("flags: server: nil store")
	}
	ledger, _ := store.(Ledger)
	if ledger != nil {
		if err := opts.ledgerEpoch(ledger); err != nil {
			return nil, err
		}
	}
	if err := opts.resolve(); err != nil {
		return nil, err
	}
	s := &Server{ledger: ledger,
		store: store, opts: opts, log: opts.Logger, access: opts.AccessLogger,
		flags: map[string]*entry{}, segments: map[string]*entry{}, tombs: map[string]tomb{},
		subs: map[*subscriber]struct{}{}, watchDone: make(chan struct{}),
	}
	static := staticTokens(&opts)
	fileSum, err := s.loadTokens(static)
	if err != nil {
		return nil, err
	}
	if err := s.loadFirst(); err != nil {
		return nil, err
	}
	evlog, ok := store.(EventLog)
	if !ok {
		evlog = &memoryEvents{}
	}
	s.events = newEventState(evlog)
	s.events.tail(context.Background(), s) // the events acknowledged before this start
	s.mux = s.routes()
	s.startWatching(static, fileSum)
	return s, nil
}

// ledgerEpoch takes the epoch from the store's ledger, which owns the
// version history and so its name; an Epoch option would contradict it.
func (o *Options) ledgerEpoch(ledger Ledger) error {
	if o.Epoch != "" {
		return fmt.Errorf("flags: server: Options.Epoch is set, but the store (a Ledger) owns the epoch")
	}
	epoch, err := ledger.Epoch(context.Background())
	if err != nil {
		return fmt.Errorf("flags: server: the store's epoch: %w", err)
	}
	if epoch == "" {
		return fmt.Errorf("flags: server: the store's epoch is empty")
	}
	o.Epoch = epoch
	return nil
}

// loadTokens checks Options.Tokens and the tokens file against the static
// tokens and each other, and installs them all. It returns the tokens
// file's checksum, from which watchTokens looks for changes.
func (s *Server) loadTokens(static []tokenEntry) ([32]byte, error) {
	opts := &s.opts
	if err := checkStatic(static); err != nil {
		return [32]byte{}, err
	}
	if err := checkTokens(opts.Tokens, static); err != nil {
		return [32]byte{}, fmt.Errorf("flags: server: Options.Tokens: %w", err)
	}
	var fileTokens []Token
	var fileSum [32]byte
	if opts.TokensFile != "" {
		var err error
		if fileTokens, fileSum, err = readTokensFile(opts.TokensFile); err != nil {
			return [32]byte{}, fmt.Errorf("flags: server: %w", err)
		}
		if err := checkTokens(fileTokens, append(static, toEntries(opts.Tokens)...)); err != nil {
			return [32]byte{}, fmt.Errorf("flags: server: %s: %w", opts.TokensFile, err)
		}
	}
	s.tokens.Store(newTokenSet(static, opts.Tokens, fileTokens))
	return fileSum, nil
}

// loadFirst loads the store's content and serves it: its entries, the
// first state and the compiled snapshot. A null member is left out (with a
// warning), as a write of null would delete it.
func (s *Server) loadFirst() error {
	doc, err := s.store.Load(context.Background())
	if err != nil {
		return fmt.Errorf("flags: server: load: %w", err)
	}
	if doc == nil {
		doc = &rules.Document{}
	}
	version, err := s.startVersion(doc)
	if err != nil {
		return err
	}
	served := &rules.Document{Version: version, Flags: map[string]json.RawMessage{}, Segments: map[string]json.RawMessage{}}
	s.addEntries(KindFlag, doc.Flags, served.Flags)
	s.addEntries(KindSegment, doc.Segments, served.Segments)
	if err := parseMembers(served); err != nil {
		return fmt.Errorf("flags: server: load: %w", err)
	}
	st, err := s.newState(served, s.opts.Epoch)
	if err != nil {
		return fmt.Errorf("flags: server: %w", err)
	}
	s.cur.Store(st)
	s.snap = eval.Compile(served)
	for _, p := range s.snap.Problems() {
		s.log.Warn("flags: serving malformed "+p.Kind, "key", p.Key, "problem", p.Error())
	}
	s.logDangling(s.snap.DanglingReferences())
	return nil
}

// auditFloor is a Store whose audit log outlives the Server (a FileStore's
// file) without owning the version history as a Ledger does.
type auditFloor interface {
	// maxAuditVersion returns the greatest version in the audit log, 0
	// when it holds none.
	maxAuditVersion(ctx context.Context) (int64, error)
}

// startVersion is the snapshot version the server starts from: the loaded
// document's, or the greatest version in the store's audit log when that is
// greater (auditFloor). SPEC §10 answers the audit log in version order and
// by since; a restart that went back to the document's version (which
// admin writes to a file leave alone) would publish versions the log
// already holds, out of order, and a client paging with since would miss
// every change until the count passed the old one. The epoch is new all the
// same: the patches of the previous run are not kept to replay. A Ledger's
// document is at the store's own version.
func (s *Server) startVersion(doc *rules.Document) (int64, error) {
	store, ok := s.store.(auditFloor)
	if !ok || s.ledger != nil {
		return doc.Version, nil
	}
	top, err := store.maxAuditVersion(context.Background())
	if err != nil {
		return 0, fmt.Errorf("flags: server: load: %w", err)
	}
	return max(doc.Version, top), nil
}

// addEntries makes an entry of every member of src but the null ones, and
// adds its bytes to dst, the served document's map of the kind.
func (s *Server) addEntries(kind Kind, src, dst map[string]json.RawMessage) {
	for key, raw := range src {
		if raw == nil || strings.TrimSpace(string(raw)) == "null" {
			s.log.Warn("flags: null "+string(kind)+" ignored", "key", key)
			continue
		}
		e := newEntry(raw, objectVersion(raw))
		s.entries(kind)[key] = e
		dst[key] = e.raw
	}
}

// startWatching starts the background work that lasts until Close: the
// tokens file's watch, the store's watch, the reload retries and the
// guards. watchDone closes when all of it has ended.
func (s *Server) startWatching(static []tokenEntry, fileSum [32]byte) {
	ctx, cancel := context.WithCancel(context.Background())
	s.stopWatch = cancel
	var bg sync.WaitGroup
	if s.opts.TokensFile != "" {
		bg.Go(func() { s.watchTokens(ctx, static, fileSum) })
	}
	bg.Go(func() { s.store.Watch(ctx, func() { s.reload(ctx) }) })
	bg.Go(func() { s.retryReloads(ctx) })
	bg.Go(func() { s.watchGuards(ctx) })
	go func() {
		bg.Wait()
		close(s.watchDone)
	}()
}

// everyTick calls fn every interval d until ctx is done. Ticks missed
// during a slow call are dropped (time.Ticker), so calls never pile up.
func everyTick(ctx context.Context, d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fn()
	}
}

// Epoch is the server's epoch, the first part of its ETags and event ids.
// It changes only when a Ledger's history is reset beneath the Server (a
// database restored from a backup: see Ledger).
func (s *Server) Epoch() string { return s.cur.Load().epoch }

// Version is the snapshot version being served.
func (s *Server) Version() int64 { return s.cur.Load().version }

// Document is the document being served, per-flag versions as published.
// It is shared: do not modify it.
func (s *Server) Document() *rules.Document { return s.cur.Load().doc }

func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /readyz", s.handleReadyz)
	mux.HandleFunc("GET /v1/flags", s.handleFlags)
	mux.HandleFunc("GET /v1/stream", s.handleStream)
	mux.HandleFunc("GET /v1/admin/flags/{key}", s.adminGet(KindFlag))
	mux.HandleFunc("GET /v1/admin/segments/{key}", s.adminGet(KindSegment))
	for _, kind := range []Kind{KindFlag, KindSegment} {
		path := "/v1/admin/" + string(kind) + "s/{key}"
		mux.HandleFunc("PUT "+path, s.adminHandler(kind, opPut))
		mux.HandleFunc("PATCH "+path, s.adminHandler(kind, opPatch))
		mux.HandleFunc("DELETE "+path, s.adminHandler(kind, opDelete))
	}
	mux.HandleFunc("PUT /v1/admin/document", s.handleDocument)
	mux.HandleFunc("GET /v1/admin/audit", s.handleAudit)
	mux.HandleFunc("POST /v1/events", s.handleEvents)
	if s.opts.Console != nil {
		mux.Handle("/ui/", s.opts.Console)
	}
	if s.opts.Metrics != nil {
		mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
			if _, ok := s.authorize(w, r, RoleReader); ok {
				s.opts.Metrics.ServeHTTP(w, r)
			}
		})
	}
	mux.HandleFunc("GET /v1/admin/experiments/{key}", s.handleExperiment)
	mux.HandleFunc("GET /v1/admin/summaries/{key}", s.handleSummaries)
	mux.HandleFunc("/v1/admin/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "flags: not found", nil)
	})
	return mux
}

// ServeHTTP serves SPEC §5: GET /v1/flags, GET /v1/stream and, when
// Options.AdminToken is set, GET, PUT and DELETE /v1/admin/flags/{key} and
// /v1/admin/segments/{key}. Every request is written to the access log
// when it ends.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.access.Enabled(r.Context(), slog.LevelInfo) {
		s.mux.ServeHTTP(w, r)
		return
	}
	start := time.Now()
	aw := &accessWriter{ResponseWriter: w, token: "-"}
	s.mux.ServeHTTP(aw, r)
	aw.log(s.access, r, start)
}

// Close shuts the server down gracefully: from its start, new admin
// requests and new streams are answered 503 (with Retry-After) and
// GET /readyz 503; it stops watching the store, lets the admin requests
// already admitted finish (their patches are published), then ends every
// stream cleanly once the events queued for it are written (a final
// flush: clients see the end of the stream and reconnect, elsewhere), and
// waits for all of it. Publish then fails with ErrClosed; GET /v1/flags
// keeps serving the last content, so http.Server.Shutdown can finish the
// remaining requests. Close is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closing = true
		s.mu.Unlock()
		s.stopWatch()
		<-s.watchDone
		s.writes.Wait()
		// No write can start now but Publish's, which takes writeMu.
		s.writeMu.Lock()
		s.mu.Lock()
		s.closed = true
		for sub := range s.subs {
			sub.drain = true
			s.removeLocked(sub, "server closing")
		}
		s.mu.Unlock()
		s.writeMu.Unlock()
		s.streams.Wait()
	})
	return nil
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// admitWrite admits an admin request that changes something, or answers it
// 503 and reports false once Close has begun. An admitted request must call
// s.writes.Done when it ends: Close waits for it.
func (s *Server) admitWrite(w http.ResponseWriter) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "flags: the server is shutting down; retry (on another replica)", nil)
		return false
	}
	s.writes.Add(1)
	if s.onAdmit != nil {
		s.onAdmit()
	}
	return true
}

// handleFlags serves GET /v1/flags.
func (s *Server) handleFlags(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, RoleReader); !ok {
		return
	}
	st := s.cur.Load()
	h := w.Header()
	h.Set("ETag", st.etag)
	h.Set("Cache-Control", "no-cache")
	if etagMatches(r.Header.Get("If-None-Match"), st.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", fmt.Sprint(len(st.body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		out := &sseWriter{w: w, rc: http.NewResponseController(w), timeout: s.opts.WriteTimeout}
		defer out.clearDeadline()
		if err := out.write(st.body); err != nil {
			s.log.Debug("flags: GET /v1/flags: write failed", "err", err)
		}
	}
}

// etagMatches applies If-None-Match (a list, "*", weak tags compared weakly).
func etagMatches(header, etag string) bool {
	if header == "" {
		return false
	}
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// problemJSON is one entry of an error's "problems".
type problemJSON struct {
	Path    string `json:"path"`    // e.g. flags.beta.rules[0].serve
	Field   string `json:"field"`   // path inside the flag or segment; "" for the whole
	Message string `json:"message"` // what is wrong
}

// writeError answers a JSON error: {"error": MESSAGE, "problems": [...]}.
func writeError(w http.ResponseWriter, status int, msg string, problems []problemJSON) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	body := struct {
		Error    string        `json:"error"`
		Problems []problemJSON `json:"problems,omitempty"`
	}{msg, problems}
	b, _ := marshalNoEscape(body)
	_, _ = w.Write(append(b, '\n'))
}
