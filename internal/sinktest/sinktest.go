// Package sinktest is the conformance suite every rowsync sink passes, so
// that a Redis hash, a MongoDB document or any later target behaves the same
// for the same stream of changes.
//
// A sink's test supplies a Harness and calls Run:
//
//	func TestConformance(t *testing.T) {
//		sinktest.Run(t, sinktest.Harness{
//			New:     func(t *testing.T, db string) cdc.Sink { ... },
//			Read:    func(t *testing.T, db, table string, pk []string) (map[string]string, bool) { ... },
//			Guarded: true,
//		})
//	}
//
// Each case uses its own database name, so cases never see each other's
// rows. The rows belong to table Table, primary key "id", with the columns
// of Columns (integer, unicode text, DECIMAL, nullable TEXT, DATETIME(3),
// BLOB); every event carries PK and Columns and a Pos.Version that grows
// within a case. State is compared in a sink-neutral form: the MySQL text
// form of each non-NULL column (cdc.FormatText), as a map.
//
// Cases: insert then read; the same batch applied twice; insert, update and
// delete in one batch and across batches; an update setting a column NULL;
// a primary-key change; empty batches; a cancelled context; a row whose key
// is missing failing alone (*cdc.BatchError naming only it); and, for
// guarded sinks, a stale version losing, a replayed older batch changing
// nothing, and a delete not resurrected by an older insert.
package sinktest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"testing"
	"time"

	"github.com/rowsync/rowsync/cdc"
)

// Harness adapts one sink to the suite.
type Harness struct {
	// New returns a fresh sink that applies the changes of every table of
	// database db (unique per case), with the table's primary key taken
	// from the events. Register cleanup with t.Cleanup.
	New func(t *testing.T, db string) cdc.Sink
	// Read returns the stored state of the row of db.table whose primary
	// key values, in text form and key order, are pk: each stored column's
	// text value, without the sink's own metadata (a version field, say),
	// or ok=false when the row is absent.
	Read func(t *testing.T, db, table string, pk []string) (row map[string]string, ok bool)
	// Guarded says the sink skips changes whose Pos.Version is older than
	// the one it stored for the row; the stale-version cases run only then.
	Guarded bool
}

// Table is the table name every case uses.
const Table = "items"

// Columns describes the suite's table; "id" is the primary key.
var Columns = []cdc.Column{
	cdc.ParseColumnType("id", "bigint(20)"),
	cdc.ParseColumnType("name", "varchar(64)"),
	cdc.ParseColumnType("price", "decimal(12,2)"),
	cdc.ParseColumnType("note", "text"),
	cdc.ParseColumnType("created", "datetime(3)"),
	cdc.ParseColumnType("data", "blob"),
}

// Item builds a row of the suite's table; note nil is NULL.
func Item(id int64, name string, note any) *cdc.Row {
	return cdc.RowOf("id", id, "name", name, "price", cdc.Decimal(fmt.Sprintf("%d.%02d", 1000000+id, id%100)), "note", note, "created", time.Date(2024, 2, 29, 23, 59, 58, 123_000_000, time.UTC).Add(time.Duration(id)*time.Second), "data", []byte{0, 0xff, byte(id), '\n'})
}

// Text renders row the way Read reports it: non-NULL columns as MySQL text.
func Text(row *cdc.Row) map[string]string {
	out := map[string]string{}
	for i := range Columns {
		c := &Columns[i]
		if s, ok := cdc.FormatText(c, row.Get(c.Name)); ok {
			out[c.Name] = s
		}
	}
	return out
}

// Run runs every case against the sink h describes.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.New == nil || h.Read == nil {
		t.Fatal("sinktest: Harness needs New and Read")
	}
	cases := []struct {
		name    string
		guarded bool
		run     func(*caseT)
	}{
		{"insert_then_read", false, insertThenRead},
		{"same_batch_twice", false, sameBatchTwice},
		{"insert_update_delete_one_batch", false, lifecycleOneBatch},
		{"insert_update_delete_across_batches", false, lifecycleAcross},
		{"update_sets_null", false, updateSetsNull},
		{"pk_change", false, pkChange},
		{"empty_batch", false, emptyBatch},
		{"cancelled_context", false, cancelledContext},
		{"missing_key_fails_alone", false, missingKeyFailsAlone},
		{"stale_version_loses", true, staleVersionLoses},
		{"older_batch_replay_changes_nothing", true, olderReplay},
		{"delete_then_older_insert_stays_deleted", true, deleteThenOlderInsert},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.guarded && !h.Guarded {
				t.Skip("sink does not guard versions")
			}
			db := "st_" + randHex(4)
			c := &caseT{T: t, h: h, db: db, sink: h.New(t, db)}
			tc.run(c)
		})
	}
}

// caseT carries one case's sink, database and version counter.
type caseT struct {
	*testing.T
	h    Harness
	db   string
	sink cdc.Sink
	ver  uint64
}

func (c *caseT) next() cdc.Position {
	c.ver += 10
	return cdc.Position{Version: c.ver, Text: "sinktest:" + strconv.FormatUint(c.ver, 10)}
}

func (c *caseT) event(op cdc.Op, before, after *cdc.Row) cdc.Event {
	return cdc.Event{DB: c.db, Table: Table, Op: op, PK: []string{"id"}, Before: before, After: after,
		Columns: Columns, Commit: time.Unix(1700000000, 0).UTC(), Pos: c.next()}
}

func (c *caseT) ins(row *cdc.Row) cdc.Event           { return c.event(cdc.Insert, nil, row) }
func (c *caseT) upd(before, after *cdc.Row) cdc.Event { return c.event(cdc.Update, before, after) }
func (c *caseT) del(row *cdc.Row) cdc.Event           { return c.event(cdc.Delete, row, nil) }

// apply applies events and fails the test on any error.
func (c *caseT) apply(events ...cdc.Event) {
	c.Helper()
	if err := c.sink.Apply(c.Context(), events); err != nil {
		c.Fatalf("Apply(%d events): %v", len(events), err)
	}
}

// want checks the stored row id: absent when row is nil.
func (c *caseT) want(id int64, row *cdc.Row) {
	c.Helper()
	got, ok := c.h.Read(c.T, c.db, Table, []string{strconv.FormatInt(id, 10)})
	switch {
	case row == nil && ok:
		c.Errorf("row %d: want absent, got %v", id, got)
	case row != nil && !ok:
		c.Errorf("row %d: want %v, got absent", id, Text(row))
	case row != nil && !maps.Equal(got, Text(row)):
		c.Errorf("row %d:\n got  %v\n want %v", id, got, Text(row))
	}
}

func (c *caseT) state(ids ...int64) map[int64]map[string]string {
	out := map[int64]map[string]string{}
	for _, id := range ids {
		if row, ok := c.h.Read(c.T, c.db, Table, []string{strconv.FormatInt(id, 10)}); ok {
			out[id] = row
		}
	}
	return out
}

func insertThenRead(c *caseT) {
	a, b := Item(1, "alice", "first"), Item(2, "Zoë 世界 🚀 \"quoted\"", nil)
	c.apply(c.ins(a), c.ins(b))
	c.want(1, a)
	c.want(2, b)
	c.want(3, nil)
}

func sameBatchTwice(c *caseT) {
	batch := []cdc.Event{
		c.ins(Item(1, "a", "x")),
		c.upd(Item(1, "a", "x"), Item(1, "a2", "y")),
		c.ins(Item(2, "b", nil)),
		c.del(Item(2, "b", nil)),
		c.ins(Item(3, "c", "z")),
	}
	c.apply(batch...)
	first := c.state(1, 2, 3)
	c.apply(batch...)
	if second := c.state(1, 2, 3); !equalState(first, second) {
		c.Errorf("state changed on replay:\n first  %v\n second %v", first, second)
	}
	c.want(1, Item(1, "a2", "y"))
	c.want(2, nil)
	c.want(3, Item(3, "c", "z"))
}

func lifecycleOneBatch(c *caseT) {
	c.apply(
		c.ins(Item(1, "a", "x")),
		c.ins(Item(2, "b", "x")),
		c.upd(Item(1, "a", "x"), Item(1, "a2", "x2")),
		c.upd(Item(2, "b", "x"), Item(2, "b2", nil)),
		c.del(Item(1, "a2", "x2")),
	)
	c.want(1, nil)
	c.want(2, Item(2, "b2", nil))
}

func lifecycleAcross(c *caseT) {
	c.apply(c.ins(Item(1, "a", "x")))
	c.want(1, Item(1, "a", "x"))
	c.apply(c.upd(Item(1, "a", "x"), Item(1, "a2", "x2")))
	c.want(1, Item(1, "a2", "x2"))
	c.apply(c.del(Item(1, "a2", "x2")))
	c.want(1, nil)
	c.apply(c.ins(Item(1, "again", nil)))
	c.want(1, Item(1, "again", nil))
}

func updateSetsNull(c *caseT) {
	c.apply(c.ins(Item(1, "a", "note")))
	after := Item(1, "a", nil)
	after.Set("data", nil)
	c.apply(c.upd(Item(1, "a", "note"), after))
	c.want(1, after)
	if got, _ := c.h.Read(c.T, c.db, Table, []string{"1"}); got != nil {
		if _, ok := got["note"]; ok {
			c.Errorf("column set to NULL still stored: %v", got)
		}
	}
}

func pkChange(c *caseT) {
	c.apply(c.ins(Item(1, "a", "x")))
	c.apply(c.upd(Item(1, "a", "x"), Item(9, "a", "x")))
	c.want(1, nil)
	c.want(9, Item(9, "a", "x"))
	// in one batch, and back again
	c.apply(
		c.ins(Item(4, "d", nil)),
		c.upd(Item(4, "d", nil), Item(5, "d", nil)),
		c.upd(Item(9, "a", "x"), Item(1, "a", "back")),
	)
	c.want(4, nil)
	c.want(5, Item(5, "d", nil))
	c.want(9, nil)
	c.want(1, Item(1, "a", "back"))
}

func emptyBatch(c *caseT) {
	if err := c.sink.Apply(c.Context(), nil); err != nil {
		c.Errorf("Apply(nil) = %v", err)
	}
	if err := c.sink.Apply(c.Context(), []cdc.Event{}); err != nil {
		c.Errorf("Apply(empty) = %v", err)
	}
}

func cancelledContext(c *caseT) {
	old := Item(1, "a", "x")
	c.apply(c.ins(old))
	ctx, cancel := context.WithCancel(c.Context())
	cancel()
	next := Item(1, "b", "y")
	upd := c.upd(old, next)
	if err := c.sink.Apply(ctx, []cdc.Event{upd, c.ins(Item(2, "new", nil))}); err == nil {
		c.Fatal("Apply with a cancelled context returned nil")
	}
	// Nothing wrong written: row 1 is either as before or as updated.
	got, ok := c.h.Read(c.T, c.db, Table, []string{"1"})
	if !ok || !(maps.Equal(got, Text(old)) || maps.Equal(got, Text(next))) {
		c.Errorf("row 1 after cancelled Apply: %v (present %v)", got, ok)
	}
	// The pipeline retries the slice; that must converge.
	c.apply(upd)
	c.want(1, next)
}

func missingKeyFailsAlone(c *caseT) {
	bad := Item(2, "nokey", nil)
	bad.Delete("id")
	err := c.sink.Apply(c.Context(), []cdc.Event{c.ins(Item(1, "a", nil)), c.ins(bad), c.ins(Item(3, "c", nil))})
	var be *cdc.BatchError
	if !errors.As(err, &be) {
		c.Fatalf("Apply = %v, want a *cdc.BatchError", err)
	}
	if len(be.Failed) != 1 || be.Failed[1] == nil {
		c.Errorf("Failed = %v, want only index 1", be.Failed)
	}
	c.want(1, Item(1, "a", nil))
	c.want(3, Item(3, "c", nil))
}

func staleVersionLoses(c *caseT) {
	ins := c.ins(Item(1, "v1", nil))
	stale := c.upd(Item(1, "v1", nil), Item(1, "stale", nil))
	fresh := c.upd(Item(1, "v1", nil), Item(1, "fresh", nil))
	c.apply(ins, fresh)
	c.apply(stale) // older version than fresh: must lose
	c.want(1, Item(1, "fresh", nil))
	// also inside one batch, out of order
	c.apply(c.ins(Item(2, "x", nil)))
	newer := c.upd(Item(2, "x", nil), Item(2, "newer", nil))
	older := c.upd(Item(2, "x", nil), Item(2, "older", nil))
	older.Pos.Version = newer.Pos.Version - 1
	c.apply(newer, older)
	c.want(2, Item(2, "newer", nil))
	// equal version applies again (a replay is harmless)
	c.apply(fresh)
	c.want(1, Item(1, "fresh", nil))
}

func olderReplay(c *caseT) {
	old := []cdc.Event{c.ins(Item(1, "a", "x")), c.ins(Item(2, "b", nil)), c.del(Item(2, "b", nil))}
	c.apply(old...)
	c.apply(c.upd(Item(1, "a", "x"), Item(1, "a2", nil)), c.ins(Item(2, "b2", "y")))
	want := c.state(1, 2)
	c.apply(old...)
	if got := c.state(1, 2); !equalState(got, want) {
		c.Errorf("older batch replay changed state:\n got  %v\n want %v", got, want)
	}
}

func deleteThenOlderInsert(c *caseT) {
	ins := c.ins(Item(1, "a", nil))
	late := c.ins(Item(1, "late", nil)) // version between ins and del
	del := c.del(Item(1, "a", nil))
	c.apply(ins)
	c.apply(del)
	c.apply(late)
	c.want(1, nil)
	// a newer insert does come back
	c.apply(c.ins(Item(1, "reborn", nil)))
	c.want(1, Item(1, "reborn", nil))
	// the same in one batch: delete then the older insert
	c.apply(c.ins(Item(2, "b", nil)))
	late2 := c.ins(Item(2, "late", nil))
	del2 := c.del(Item(2, "b", nil))
	c.apply(del2, late2)
	c.want(2, nil)
}

func equalState(a, b map[int64]map[string]string) bool {
	return maps.EqualFunc(a, b, func(x, y map[string]string) bool { return maps.Equal(x, y) })
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
