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
	// 3: the state table's own oid, as the state row last saw it. A
	// logical restore (pg_dump, pg_restore) recreates the table, so the
	// oid it restores is not the table's: the history was restored from
	// a backup, and Open renews the epoch (see checkRestored).
	`ALTER TABLE flagstream_state ADD COLUMN table_oid oid;`,
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
	return s.checkRestored(ctx, conn.Conn())
}

// checkRestored renews the epoch of a database restored from a logical
// backup: its state row names another table than the one that holds it. A
// restore may have taken the history back to an older version, which the
// next writes would then publish again with other content; under the old
// epoch, a client of the lost history would resume from its Last-Event-ID
// into the wrong content. Replicas that run during a restore of any kind
// find it themselves (the counter goes back: Changes returns
// server.ErrHistoryReset).
func (s *Store) checkRestored(ctx context.Context, conn *pgx.Conn) error {
	var epoch string
	var recorded *uint32
	var actual uint32
	err := conn.QueryRow(ctx, `SELECT epoch, table_oid, 'flagstream_state'::regclass::oid FROM flagstream_state WHERE id = 1`).
		Scan(&epoch, &recorded, &actual)
	if err != nil {
		return wrap("migrate", err)
	}
	switch {
	case recorded == nil:
		_, err = conn.Exec(ctx, `UPDATE flagstream_state SET table_oid = $1 WHERE id = 1`, actual)
	case *recorded != actual:
		var renewed string
		if renewed, err = renewEpoch(ctx, conn, epoch); err == nil {
			s.log.Warn("pgstore: the database was restored from a backup; its history has a new epoch, and clients resume with a snapshot",
				"epoch", epoch, "newEpoch", renewed)
		}
	}
	return wrap("migrate", err)
}

// replaceEpoch puts the epoch literal into the first migration (a
// multi-statement Exec takes no parameters).
func replaceEpoch(step, literal string) string {
	return strings.Replace(step, "$EPOCH$", literal, 1)
}
