package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/flagstream/flags/server"
)

var _ server.EventLog = (*Store)(nil)

// eventsLock is the transaction-level advisory lock appends take, so that
// row ids are assigned, and committed, in order: a replica reading the
// table by id never skips a batch another replica was still writing.
const eventsLock = 0x65766e74 // "evnt"

// AppendEvents stores a batch of events, committed before it returns; a
// batch id already stored (by any replica) is a duplicate.
func (s *Store) AppendEvents(ctx context.Context, b *server.EventBatch) (bool, error) {
	events, err := json.Marshal(b.Events)
	if err != nil {
		return false, fmt.Errorf("pgstore: events: %w", err)
	}
	dup := false
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, eventsLock); err != nil {
			return err
		}
		var id int64
		err := tx.QueryRow(ctx, `INSERT INTO flagstream_events (batch, received, events) VALUES ($1, $2, $3)
			ON CONFLICT (batch) DO NOTHING RETURNING id`, b.ID, b.Received, string(events)).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			dup = true
			return nil
		}
		return err
	})
	if err != nil {
		return false, wrap("events", err)
	}
	return dup, nil
}

// EventsSince returns the batches stored after row id cursor.
func (s *Store) EventsSince(ctx context.Context, cursor string, limit int) ([]*server.EventBatch, string, error) {
	after, ok := rowCursor(cursor)
	if !ok {
		return nil, cursor, fmt.Errorf("pgstore: events: bad cursor %q", cursor)
	}
	rows, err := s.pool.Query(ctx, `SELECT id, batch, received, events FROM flagstream_events WHERE id > $1 ORDER BY id LIMIT $2`, after, limit)
	if err != nil {
		return nil, cursor, wrap("events", err)
	}
	var out []*server.EventBatch
	var id, received int64
	var batch, events string
	_, err = pgx.ForEachRow(rows, []any{&id, &batch, &received, &events}, func() error {
		b := &server.EventBatch{ID: batch, Received: received}
		if err := json.Unmarshal([]byte(events), &b.Events); err != nil {
			return fmt.Errorf("batch %s: %w", batch, err)
		}
		out = append(out, b)
		after = id
		return nil
	})
	if err != nil {
		return nil, cursor, wrap("events", err)
	}
	return out, strconv.FormatInt(after, 10), nil
}
