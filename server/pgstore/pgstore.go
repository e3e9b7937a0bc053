// Package pgstore is a PostgreSQL store for the flag server (SPEC §10): the
// source of truth that any number of server replicas share.
//
// It implements server.Ledger: one store-wide version in a one-row counter
// that every write steps in its own transaction (gapless: a write proposing
// another version than the counter's next is refused with server.ErrStale,
// and the Server catches up and tries again), the epoch stored once, a change
// log of at least the last KeepChanges commits for replicas that catch up and
// for clients that fail over with a Last-Event-ID, and the audit table
// written in the same transaction as the change it records.
//
// Replicas learn of each other's writes by LISTEN/NOTIFY, within
// milliseconds, and by a safety poll of the counter (every PollInterval), so
// that a lost notification delays a change but never loses it. The listener
// needs a session of its own: point the store at PostgreSQL directly or
// through a session-pooling proxy, not through PgBouncer's transaction
// pooling, which does not deliver notifications.
//
// While the database cannot be reached, every method returns an error
// wrapping server.ErrUnavailable: the Server keeps serving its last snapshot
// and streams, answers admin writes with 503 and GET /readyz with 503, and
// catches up from the change log when the database answers again.
//
// The package is separate from package server so that only programs that
// use PostgreSQL link its driver (github.com/jackc/pgx/v5).
package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flagstream/flags/rules"
	"github.com/flagstream/flags/server"
)

// Defaults of Options.
const (
	// DefaultKeepChanges is how many commits the change log keeps at least.
	DefaultKeepChanges = 10000
	// DefaultPollInterval is how often a replica reads the counter in case a
	// notification was lost.
	DefaultPollInterval = 2 * time.Second
)

// channel is the LISTEN/NOTIFY channel of the store's writes.
const channel = "flagstream_changes"

// Options configure a Store. The zero value is usable.
type Options struct {
	// Logger receives the store's warnings (a lost listener connection);
	// slog.Default() when nil.
	Logger *slog.Logger
	// KeepChanges is how many commits the change log keeps at least;
	// DefaultKeepChanges when 0.
	KeepChanges int
	// PollInterval is how often Watch reads the counter besides listening;
	// DefaultPollInterval when 0.
	PollInterval time.Duration
}

// Store is a server.Ledger and server.Pinger over a PostgreSQL database.
// Open it with Open and close it with Close after the Server that uses it.
type Store struct {
	pool *pgxpool.Pool
	url  string
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	listener *pgx.Conn // LISTENing since Open; Watch takes it over
}

var (
	_ server.Ledger = (*Store)(nil)
	_ server.Pinger = (*Store)(nil)
)

// Open connects to the database at url (a postgres:// URL or a key=value
// connection string), creates or migrates its schema and starts listening
// for other replicas' writes, before the Server's first Load, so that no
// write falls between what it loads and what it is told.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.KeepChanges <= 0 {
		opts.KeepChanges = DefaultKeepChanges
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err) // never echo the URL: it may hold a password
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	s := &Store{pool: pool, url: url, opts: opts, log: opts.Logger}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	if s.listener, err = s.listen(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the store's connections.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.listener != nil {
		_ = s.listener.Close(context.Background())
		s.listener = nil
	}
	s.mu.Unlock()
	s.pool.Close()
	return nil
}

// Epoch returns the store's identity, made once by the first migration.
func (s *Store) Epoch(ctx context.Context) (string, error) {
	var epoch string
	err := s.pool.QueryRow(ctx, `SELECT epoch FROM flagstream_state WHERE id = 1`).Scan(&epoch)
	if err != nil {
		return "", wrap("epoch", err)
	}
	return epoch, nil
}

// RenewEpoch gives the store a new epoch if its epoch is still old, and
// returns the epoch in force. The Server calls it when the counter went
// back (a restored backup): the history no longer continues the old one.
func (s *Store) RenewEpoch(ctx context.Context, old string) (string, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return "", wrap("renew epoch", err)
	}
	defer conn.Release()
	epoch, err := renewEpoch(ctx, conn.Conn(), old)
	return epoch, wrap("renew epoch", err)
}

// renewEpoch replaces the epoch if it is still old, records the state
// table's oid (see checkRestored) and returns the epoch in force.
func renewEpoch(ctx context.Context, conn *pgx.Conn, old string) (string, error) {
	// Two statements: a replica that renews it at the same time makes this
	// UPDATE find no row, and the SELECT after it, a statement of its own,
	// sees what that replica committed.
	_, err := conn.Exec(ctx, `UPDATE flagstream_state SET epoch = $1, table_oid = 'flagstream_state'::regclass::oid
		WHERE id = 1 AND epoch = $2`, randomID(8), old)
	if err != nil {
		return "", err
	}
	var epoch string
	err = conn.QueryRow(ctx, `SELECT epoch FROM flagstream_state WHERE id = 1`).Scan(&epoch)
	return epoch, err
}

// Ping reports whether the database answers (GET /readyz).
func (s *Store) Ping(ctx context.Context) error {
	return wrap("ping", s.pool.Ping(ctx))
}

// Load reads every flag and segment at the store's version, in one snapshot
// of the database.
func (s *Store) Load(ctx context.Context) (*rules.Document, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, wrap("load", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read-only
	doc := &rules.Document{Flags: map[string]json.RawMessage{}, Segments: map[string]json.RawMessage{}}
	if err := tx.QueryRow(ctx, `SELECT version FROM flagstream_state WHERE id = 1`).Scan(&doc.Version); err != nil {
		return nil, wrap("load", err)
	}
	rows, err := tx.Query(ctx, `SELECT kind, key, value FROM flagstream_objects`)
	if err != nil {
		return nil, wrap("load", err)
	}
	var kind, key, value string
	_, err = pgx.ForEachRow(rows, []any{&kind, &key, &value}, func() error {
		m := doc.Flags
		if kind == string(server.KindSegment) {
			m = doc.Segments
		}
		m[key] = json.RawMessage(value)
		return nil
	})
	if err != nil {
		return nil, wrap("load", err)
	}
	return doc, nil
}

// logChange is one Change as the change log stores it.
type logChange struct {
	Kind  server.Kind     `json:"kind"`
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value"` // null: deleted
}

// Write commits c in one transaction if c.Version is the counter's next
// value: its flags and segments, its change-log row (pruning rows older than
// KeepChanges), its audit entries, the counter's step and the notification
// to the other replicas. Otherwise it returns server.ErrStale.
func (s *Store) Write(ctx context.Context, c *server.Commit) error {
	if len(c.Changes) == 0 {
		return fmt.Errorf("pgstore: a commit without changes at version %d", c.Version)
	}
	logged := make([]logChange, len(c.Changes))
	for i, ch := range c.Changes {
		logged[i] = logChange{Kind: ch.Kind, Key: ch.Key, Value: ch.Value}
	}
	changes, err := json.Marshal(logged)
	if err != nil {
		return fmt.Errorf("pgstore: write: %w", err)
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var version int64
		if err := tx.QueryRow(ctx, `SELECT version FROM flagstream_state WHERE id = 1 FOR UPDATE`).Scan(&version); err != nil {
			return wrap("write", err)
		}
		if c.Version != version+1 {
			return fmt.Errorf("pgstore: %w: the store is at version %d, the change proposed %d", server.ErrStale, version, c.Version)
		}
		b := &pgx.Batch{}
		for _, ch := range c.Changes {
			if ch.Value == nil {
				b.Queue(`DELETE FROM flagstream_objects WHERE kind = $1 AND key = $2`, string(ch.Kind), ch.Key)
			} else {
				b.Queue(`INSERT INTO flagstream_objects (kind, key, value) VALUES ($1, $2, $3)
					ON CONFLICT (kind, key) DO UPDATE SET value = EXCLUDED.value`, string(ch.Kind), ch.Key, string(ch.Value))
			}
		}
		b.Queue(`INSERT INTO flagstream_changes (version, changes) VALUES ($1, $2)`, c.Version, string(changes))
		b.Queue(`DELETE FROM flagstream_changes WHERE version <= $1`, c.Version-int64(s.opts.KeepChanges))
		for _, e := range c.Audit {
			b.Queue(`INSERT INTO flagstream_audit (version, at, actor, action, kind, key, before, after, comment)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
				e.Version, e.At, e.Actor, string(e.Action), string(e.Kind), e.Key, nullable(e.Before), nullable(e.After), e.Comment)
		}
		b.Queue(`UPDATE flagstream_state SET version = $1 WHERE id = 1`, c.Version)
		b.Queue(`SELECT pg_notify($1, $2)`, channel, strconv.FormatInt(c.Version, 10))
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return wrap("write", err)
		}
		return nil
	})
	if err != nil && !errors.Is(err, server.ErrStale) && !errors.Is(err, server.ErrUnavailable) {
		return wrap("write", err) // BEGIN or COMMIT failed
	}
	return err
}

// Changes returns the commits after version after, oldest first, at most
// limit; server.ErrHistoryGone when the log no longer holds after+1.
func (s *Store) Changes(ctx context.Context, after int64, limit int) ([]*server.Commit, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, wrap("change log", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read-only
	var version int64
	if err := tx.QueryRow(ctx, `SELECT version FROM flagstream_state WHERE id = 1`).Scan(&version); err != nil {
		return nil, wrap("change log", err)
	}
	if after > version {
		return nil, fmt.Errorf("pgstore: %w: the store is at version %d, below the %d served", server.ErrHistoryReset, version, after)
	}
	if after == version {
		return nil, nil
	}
	rows, err := tx.Query(ctx, `SELECT version, changes FROM flagstream_changes WHERE version > $1 ORDER BY version LIMIT $2`, after, limit)
	if err != nil {
		return nil, wrap("change log", err)
	}
	var out []*server.Commit
	var v int64
	var changes string
	_, err = pgx.ForEachRow(rows, []any{&v, &changes}, func() error {
		var logged []logChange
		if err := json.Unmarshal([]byte(changes), &logged); err != nil {
			return fmt.Errorf("version %d: %w", v, err)
		}
		c := &server.Commit{Version: v, Changes: make([]server.Change, len(logged))}
		for i, l := range logged {
			c.Changes[i] = server.Change{Kind: l.Kind, Key: l.Key, Value: l.Value}
			if string(l.Value) == "null" {
				c.Changes[i].Value = nil
			}
		}
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, wrap("change log", err)
	}
	if len(out) == 0 || out[0].Version != after+1 {
		return nil, fmt.Errorf("pgstore: %w: version %d (the store is at %d)", server.ErrHistoryGone, after+1, version)
	}
	return out, nil
}

// Audit reads the audit table. Its cursors are the entries' row ids, which
// grow in commit order: writes hold the counter's row lock when they insert.
func (s *Store) Audit(ctx context.Context, q server.AuditQuery) (*server.AuditPage, error) {
	after, ok := rowCursor(q.After)
	if !ok {
		return nil, fmt.Errorf("%w: %q", server.ErrBadCursor, q.After)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = server.DefaultAuditLimit
	}
	limit = min(limit, server.MaxAuditLimit)
	rows, err := s.pool.Query(ctx, `SELECT id, version, at, actor, action, kind, key, before, after, comment
		FROM flagstream_audit
		WHERE id > $1 AND version > $2 AND ($3 = '' OR kind = $3) AND ($4 = '' OR key = $4)
		ORDER BY id LIMIT $5`, after, q.Since, string(q.Kind), q.Key, limit+1)
	if err != nil {
		return nil, wrap("audit", err)
	}
	p := server.NewAuditPager(q)
	var id int64
	var e server.AuditEntry
	var action, kind string
	var before, afterValue *string
	prev, more := after, true // prev: the cursor that continues from the row read
	_, err = pgx.ForEachRow(rows, []any{&id, &e.Version, &e.At, &e.Actor, &action, &kind, &e.Key, &before, &afterValue, &e.Comment}, func() error {
		if !more {
			return nil
		}
		e.Action, e.Kind = server.Action(action), server.Kind(kind)
		e.At = e.At.UTC()
		e.Before, e.After = raw(before), raw(afterValue)
		more = p.Add(e, strconv.FormatInt(prev, 10))
		prev = id
		return nil
	})
	if err != nil {
		return nil, wrap("audit", err)
	}
	return p.Page(), nil
}

// Watch calls notify when another replica committed a change: on its
// notification, and when the safety poll finds the counter moved. It
// reconnects the listener when the database goes away, and returns when
// ctx is done.
func (s *Store) Watch(ctx context.Context, notify func()) {
	s.mu.Lock()
	conn := s.listener
	s.listener = nil
	s.mu.Unlock()
	var seen int64 = -1
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		if conn == nil {
			var err error
			if conn, err = s.listen(ctx); err != nil {
				if ctx.Err() == nil {
					s.log.Warn("pgstore: cannot listen for other replicas' changes; retrying", "err", err, "in", backoff)
				}
				sleep(ctx, backoff)
				backoff = min(2*backoff, s.opts.PollInterval)
				continue
			}
			backoff = 100 * time.Millisecond
			notify() // changes may have been missed while not listening
		}
		wctx, cancel := context.WithTimeout(ctx, s.opts.PollInterval)
		_, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			// Also for this replica's own writes: the Server finds nothing
			// new then, and a program writing through the Store itself (not
			// the Server) is published.
			notify()
		case ctx.Err() != nil:
		case errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
			// The safety poll: a notification may have been lost.
			var version int64
			if err := conn.QueryRow(ctx, `SELECT version FROM flagstream_state WHERE id = 1`).Scan(&version); err != nil {
				_ = conn.Close(context.Background())
				conn = nil
				continue
			}
			if version != seen { // the first poll too: a write may have come after Load and before LISTEN was read
				notify()
			}
			seen = version
		default:
			s.log.Warn("pgstore: lost the listener connection; reconnecting", "err", err)
			_ = conn.Close(context.Background())
			conn = nil
		}
	}
	if conn != nil {
		_ = conn.Close(context.Background())
	}
}

// listen opens a connection of its own and LISTENs on it.
func (s *Store) listen(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.Connect(ctx, s.url)
	if err != nil {
		return nil, wrap("listen", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+channel); err != nil {
		_ = conn.Close(context.Background())
		return nil, wrap("listen", err)
	}
	return conn, nil
}

// rowCursor reads a cursor of the audit or events table: the row id the
// page ended at, "" for before the first (ids start at 1). ok is false for
// anything but a non-negative integer.
func rowCursor(cursor string) (id int64, ok bool) {
	if cursor == "" {
		return 0, true
	}
	id, err := strconv.ParseInt(cursor, 10, 64)
	return id, err == nil && id >= 0
}

// wrap adds context to a database error, and server.ErrUnavailable when it
// means the database cannot be reached (rather than that it refused
// something).
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if unreachable(err) {
		return fmt.Errorf("pgstore: %s: %w: %w", op, server.ErrUnavailable, err)
	}
	return fmt.Errorf("pgstore: %s: %w", op, err)
}

// unreachable reports whether err is the database being away: a network
// error, a refused or lost connection, a server shutting down or starting.
func unreachable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return strings.HasPrefix(pgErr.Code, "08") || // connection exception
			pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03" // shutdown, crash, starting
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return true // the database did not answer in time
	}
	// Anything else that is not an answer from the server (dial errors, a
	// connection reset mid-query, a closed pool) means it is not reachable.
	return !errors.Is(err, pgx.ErrNoRows) && !errors.Is(err, pgx.ErrTxClosed)
}

// nullable maps an absent audit value (nil) to SQL NULL.
func nullable(v json.RawMessage) *string {
	if v == nil || string(v) == "null" {
		return nil
	}
	s := string(v)
	return &s
}

// raw maps SQL NULL back to an absent audit value.
func raw(s *string) json.RawMessage {
	if s == nil {
		return nil
	}
	return json.RawMessage(*s)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// randomID returns n random bytes in hex.
func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
