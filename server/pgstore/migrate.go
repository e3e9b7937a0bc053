package pgstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// migrations are the schema's steps, applied in order, each once, in its own
// transaction. A step is never edited once released: changes are new steps.
var migrations = []string{
	// 1: the counter and the epoch (one row), the flags and segments, the
	// change log and the audit table. Values are kept as text, byte for
	// byte as the server wrote them (jsonb would reorder their members).
	`CREATE TABLE flagstream_state (
		id      integer PRIMARY KEY CHECK (id = 1),
		version bigint  NOT NULL CHECK (version >= 0),
		epoch   text    NOT NULL
	);
	INSERT INTO flagstream_state (id, version, epoch) VALUES (1, 0, $EPOCH$);
	CREATE TABLE flagstream_objects (
		kind  text NOT NULL CHECK (kind IN ('flag', 'segment')),
		key   text NOT NULL,
		value text NOT NULL,
		PRIMARY KEY (kind, key)
	);
	CREATE TABLE flagstream_changes (
		version bigint PRIMARY KEY,
		at      timestamptz NOT NULL DEFAULT now(),
		changes text NOT NULL
	);
	CREATE TABLE flagstream_audit (
		id      bigserial PRIMARY KEY,
		version bigint NOT NULL,
		at      timestamptz NOT NULL,
		actor   text NOT NULL,
		action  text NOT NULL,
		kind    text NOT NULL,
		key     text NOT NULL,
		before  text,
		after   text,
		comment text NOT NULL DEFAULT ''
	);
	CREATE INDEX flagstream_audit_key ON flagstream_audit (key, id);`,
	// 2: the SDK events the replicas acknowledged (SPEC §7), one row a
	// batch; the unique batch id makes a retried batch a duplicate on any
	// replica.
	`CREATE TABLE flagstream_events (
		id       bigserial PRIMARY KEY,
		batch    text   NOT NULL UNIQUE,
		received bigint NOT NULL,
		events   text   NOT NULL
	);`,
}

// migrationLock is the advisory lock key under which replicas migrate, one
// at a time: the others wait, then find nothing left to do.
const migrationLock = 0x666c6167 // "flag"

// migrate creates or updates the schema. Several replicas starting at once
// all succeed: the advisory lock serializes them.
func (s *Store) migrate(ctx context.Context) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return wrap("migrate", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		return wrap("migrate", err)
	}
	defer conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, migrationLock) //nolint:errcheck // released with the session anyway
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS flagstream_migrations (
		version    integer PRIMARY KEY,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return wrap("migrate", err)
	}
	var done int
	if err := conn.QueryRow(ctx, `SELECT COALESCE(max(version), 0) FROM flagstream_migrations`).Scan(&done); err != nil {
		return wrap("migrate", err)
	}
	if done > len(migrations) {
		return fmt.Errorf("pgstore: the database's schema is at migration %d, newer than this program's %d: upgrade the program", done, len(migrations))
	}
	for i := done; i < len(migrations); i++ {
		step := migrations[i]
		if i == 0 {
			step = replaceEpoch(step, "'"+randomID(8)+"'")
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, step); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO flagstream_migrations (version) VALUES ($1)`, i+1)
			return err
		})
		if err != nil {
			return wrap(fmt.Sprintf("migration %d", i+1), err)
		}
	}
	return nil
}

// replaceEpoch puts the epoch literal into the first migration (a
// multi-statement Exec takes no parameters).
func replaceEpoch(step, literal string) string {
	return strings.Replace(step, "$EPOCH$", literal, 1)
}
