// Package verify compares what rowsync wrote with what MySQL holds:
// every Redis hash and every MongoDB document of a table against the
// table's rows, exactly as the projectors render them (their Image), and
// asks the running pipeline to repair what differs (Repair).
//
// A comparison streams in two passes, its memory bounded by the chunk
// size whatever the table's size:
//
//   - MySQL to sink: the table is read in primary-key order, a chunk at a
//     time (refetch.Cursor, keyset pagination, rows typed as every source
//     types them); each chunk's keys are looked up in the sink in one
//     round trip (a Redis pipeline of HGETALLs, a MongoDB find with
//     `_id: {$in: [...]}`): a row whose hash or document is absent is
//     missing, one whose content differs is different.
//   - sink to MySQL: the sink's keys of the table are walked (Redis SCAN
//     over the rule's key pattern, a MongoDB cursor over the collection's
//     _ids), a chunk at a time; the primary key each names (hash fields,
//     _id or document fields) is read back from MySQL by key
//     (refetch.Refetcher, one IN query per chunk), and an entry that no
//     current row renders to is extra: its row was deleted, or its key
//     columns changed, in MySQL but not in the sink.
//
// The two passes are not one snapshot: on a live pipeline a row changed
// during the comparison can show as a difference that the stream is about
// to fix. Compare again (or repair: replaying a current row is harmless).
package verify

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/refetch"
)

// DefaultChunk is the rows per MySQL chunk and the keys per sink round
// trip when Options.Chunk is 0.
const DefaultChunk = 1000

// Kinds of Mismatch.
const (
	// Missing: the row has no hash or document (or only a tombstone).
	Missing = "missing"
	// Different: the hash or document differs from the row.
	Different = "different"
	// Extra: the hash or document names no current row.
	Extra = "extra"
	// Unrenderable: the row's key cannot be rendered (a NULL key column);
	// the pipeline dead-letters such rows. Counted as missing.
	Unrenderable = "unrenderable"
	// Unchecked: an entry of the sink (or a row of MySQL) that could not
	// be compared: its primary key cannot be recovered from the sink, or
	// its row's values cannot be typed. Not a difference.
	Unchecked = "unchecked"
)

// Mismatch is one difference.
type Mismatch struct {
	Kind string
	// Key is the sink's name of the row: the Redis key, or the _id as
	// extended JSON.
	Key    string
	Detail string
	// PK is the row's primary key, its values in key order in MySQL text
	// form (what a backfill request takes); nil when unknown.
	PK []string
}

// Stats summarises a comparison.
type Stats struct {
	Rows, Missing, Different, Extra int
	// Unchecked counts entries and rows that could not be compared.
	Unchecked int
}

// OK reports whether the sink equals MySQL.
func (s Stats) OK() bool { return s.Missing == 0 && s.Different == 0 && s.Extra == 0 }

func (s Stats) String() string {
	out := fmt.Sprintf("%d rows: %d missing, %d different, %d extra", s.Rows, s.Missing, s.Different, s.Extra)
	if s.Unchecked > 0 {
		out += fmt.Sprintf(", %d unchecked", s.Unchecked)
	}
	return out
}

// Add adds o's counts to s.
func (s *Stats) Add(o Stats) {
	s.Rows += o.Rows
	s.Missing += o.Missing
	s.Different += o.Different
	s.Extra += o.Extra
	s.Unchecked += o.Unchecked
}

// Options tune a comparison.
type Options struct {
	// Chunk is the rows read from MySQL per query and the keys looked up
	// in the sink per round trip; memory grows with it, not with the
	// table. Default: DefaultChunk (at most refetch.MaxChunkSize)
	Chunk int
	// Report, if not nil, gets each mismatch (and each unchecked entry).
	Report func(Mismatch)
}

// sink is one sink's side of a comparison.
type sink interface {
	// compare looks rows (one MySQL chunk) up in the sink and reports the
	// missing and different ones.
	compare(ctx context.Context, c *check, rows []*cdc.Row) error
	// walk calls fn with the sink's entries of the table, at most c.chunk
	// at a time.
	walk(ctx context.Context, c *check, fn func([]entry) error) error
	// name returns the sink's key of row, as entry.key holds it.
	name(c *check, row *cdc.Row, cols []cdc.Column) (string, error)
}

// entry is one hash or document found in the sink.
type entry struct {
	key  string   // as sink.name renders it
	show string   // as Mismatch.Key prints it
	pk   *cdc.Row // the primary-key values it names; nil when unknown
	why  error    // why pk is nil
}

// check is the state of one table's comparison.
type check struct {
	db, table string
	cols      []cdc.Column
	pk        []string // the table's primary key, else the rule's
	chunk     int
	st        Stats
	report    func(Mismatch)
}

func (c *check) mismatch(m Mismatch) {
	switch m.Kind {
	case Missing, Unrenderable:
		c.st.Missing++
	case Different:
		c.st.Different++
	case Extra:
		c.st.Extra++
	case Unchecked:
		c.st.Unchecked++
	}
	if c.report != nil {
		c.report(m)
	}
}

// pkText returns row's primary key in MySQL text form; nil when a value
// is missing.
func (c *check) pkText(row *cdc.Row) []string {
	if len(c.pk) == 0 {
		return nil
	}
	out := make([]string, len(c.pk))
	for i, name := range c.pk {
		v, ok := row.Lookup(name)
		if !ok || v == nil {
			return nil
		}
		var col *cdc.Column
		for j := range c.cols {
			if c.cols[j].Name == name {
				col = &c.cols[j]
				break
			}
		}
		s, ok := cdc.FormatText(col, v)
		if !ok {
			return nil
		}
		out[i] = s
	}
	return out
}

// compare runs both passes of one table against s. rulePK is the rule's
// configured primary key, used when the table has none.
func compare(ctx context.Context, rf *refetch.Refetcher, db, table string, rulePK []string, s sink, opt Options) (Stats, error) {
	chunk := opt.Chunk
	if chunk <= 0 {
		chunk = DefaultChunk
	}
	chunk = min(chunk, refetch.MaxChunkSize)
	cur, err := rf.Scan(ctx, db, table, chunk)
	if err != nil {
		return Stats{}, err
	}
	defer cur.Close()
	c := &check{db: db, table: table, cols: cur.Columns(), pk: cur.PK(), chunk: chunk, report: opt.Report}
	if len(c.pk) == 0 {
		c.pk = rulePK
	}
	for {
		rows, bad, err := cur.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return c.st, err
		}
		c.st.Rows += len(rows) + len(bad)
		for _, b := range bad {
			c.mismatch(Mismatch{Kind: Unchecked, Key: b.Key, Detail: "row cannot be read: " + b.Err.Error()})
		}
		if err := s.compare(ctx, c, rows); err != nil {
			return c.st, err
		}
	}
	if err := cur.Close(); err != nil {
		return c.st, err
	}
	err = s.walk(ctx, c, func(batch []entry) error { return c.extras(ctx, rf, s, batch) })
	return c.st, err
}

// extras reads the rows that batch's entries name back from MySQL by
// primary key and reports the entries no current row renders to.
func (c *check) extras(ctx context.Context, rf *refetch.Refetcher, s sink, batch []entry) error {
	events := make([]cdc.Event, 0, len(batch))
	idx := make([]int, 0, len(batch))
	for i, e := range batch {
		if e.pk == nil || len(c.pk) == 0 {
			why := e.why
			if why == nil {
				why = errors.New("the table has no primary key")
			}
			c.mismatch(Mismatch{Kind: Unchecked, Key: e.show, Detail: "primary key unknown: " + why.Error()})
			continue
		}
		events = append(events, cdc.Event{DB: c.db, Table: c.table, Op: cdc.Update, PK: c.pk, Before: e.pk, After: e.pk})
		idx = append(idx, i)
	}
	if len(events) == 0 {
		return nil
	}
	out, err := rf.Refetch(ctx, events)
	var be *cdc.BatchError
	if err != nil && !errors.As(err, &be) {
		return fmt.Errorf("read %s.%s by key: %w", c.db, c.table, err)
	}
	current := make(map[string]bool, len(out))
	for _, ev := range out {
		if ev.Op == cdc.Delete {
			continue
		}
		if k, err := s.name(c, ev.After, ev.Columns); err == nil {
			current[k] = true
		}
	}
	for j, i := range idx {
		e := batch[i]
		if be != nil && be.Failed[j] != nil {
			c.mismatch(Mismatch{Kind: Unchecked, Key: e.show, Detail: "primary key unreadable: " + be.Failed[j].Error()})
			continue
		}
		if !current[e.key] {
			c.mismatch(Mismatch{Kind: Extra, Key: e.show, PK: c.pkText(e.pk)})
		}
	}
	return nil
}
