package mongo

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/rowsync/rowsync/cdc"
)

// hostileEvent is a change whose primary key or row was written by an
// untrusted producer.
func hostileEvent(db string, op cdc.Op, row *cdc.Row, cols ...cdc.Column) cdc.Event {
	e := cdc.Event{DB: db, Table: "users", Op: op, PK: []string{"id"}, Columns: cols}
	if op == cdc.Delete {
		e.Before = row
	} else {
		e.After = row
	}
	return e
}

// TestKeyInjection: a primary-key value that is a JSON object ({"$ne":
// null}) must never reach a write filter: the event goes to the dead letter
// and no other document is touched, whatever the op.
func TestKeyInjection(t *testing.T) {
	db := uniqueDB(t)
	p := newProjector(t, rules(t, db+`\.users`, TableConfig{}))
	idCol := cdc.ParseColumnType("id", "int")
	seed := []cdc.Event{
		hostileEvent(db, cdc.Insert, cdc.RowOf("id", int64(1), "name", "a"), idCol),
		hostileEvent(db, cdc.Insert, cdc.RowOf("id", int64(2), "name", "b"), idCol),
	}
	if err := p.Apply(t.Context(), seed); err != nil {
		t.Fatal(err)
	}
	jsonCol := cdc.ParseColumnType("id", "json")
	cases := []struct {
		name string
		e    cdc.Event
	}{
		{"delete json value", hostileEvent(db, cdc.Delete, cdc.RowOf("id", cdc.JSON(`{"$ne":null}`)))},
		{"delete json column", hostileEvent(db, cdc.Delete, cdc.RowOf("id", `{"$ne":null}`), jsonCol)},
		{"delete json array", hostileEvent(db, cdc.Delete, cdc.RowOf("id", cdc.JSON(`[1,2]`)))},
		{"delete set", hostileEvent(db, cdc.Delete, cdc.RowOf("id", cdc.Set{"a"}))},
		{"insert json value", hostileEvent(db, cdc.Insert, cdc.RowOf("id", cdc.JSON(`{"$ne":null}`), "name", "x"))},
		{"update json value", hostileEvent(db, cdc.Update, cdc.RowOf("id", cdc.JSON(`{"$gt":0}`), "name", "x"))},
		{"delete composite operator fields", cdc.Event{DB: db, Table: "users", Op: cdc.Delete, PK: []string{"$ne", "$exists"},
			Before: cdc.RowOf("$ne", int64(0), "$exists", true)}},
		{"delete composite dotted field", cdc.Event{DB: db, Table: "users", Op: cdc.Delete, PK: []string{"a.b", "k"},
			Before: cdc.RowOf("a.b", int64(0), "k", int64(1))}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := p.Apply(t.Context(), []cdc.Event{c.e})
			var be *cdc.BatchError
			if !errors.As(err, &be) || be.Failed[0] == nil || !errors.Is(be.Failed[0], cdc.ErrPermanent) {
				t.Fatalf("Apply = %v, want a permanent failure of the event", err)
			}
			for _, id := range []int32{1, 2} {
				if _, ok := findID(t, db, "users", id); !ok {
					t.Errorf("document %d was deleted by a hostile key", id)
				}
			}
			if n := len(allDocs(t, db, "users")); n != 2 {
				t.Errorf("%d documents, want 2", n)
			}
		})
	}
}

// TestFieldNames: a column or JSON key that MongoDB would read as an
// operator or a path ($-prefixed, dotted) sends the row to the dead letter
// with the field's name; a rename makes the column writable.
func TestFieldNames(t *testing.T) {
	db := uniqueDB(t)
	p := newProjector(t, []cdc.TableRule[TableConfig]{
		rules(t, db+`\.renamed`, TableConfig{Rename: map[string]string{"a.b": "a_b", "$x": "x"}}, "id")[0],
		rules(t, db+`\..*`, TableConfig{}, "id")[0],
	})
	ev := func(table string, row *cdc.Row) cdc.Event {
		return cdc.Event{DB: db, Table: table, Op: cdc.Insert, PK: []string{"id"}, After: row}
	}
	batch := []cdc.Event{
		ev("users", cdc.RowOf("id", int64(1), "a.b", "dotted")),
		ev("users", cdc.RowOf("id", int64(2), "$set", "dollar")),
		ev("users", cdc.RowOf("id", int64(3), "prefs", cdc.JSON(`{"theme":{"$where":"1"}}`))),
		ev("users", cdc.RowOf("id", int64(4), "prefs", cdc.JSON(`[{"a.b":1}]`))),
		ev("users", cdc.RowOf("id", int64(5), "prefs", cdc.JSON(`{"ok":"$not a key","price":"1.5"}`))),
		ev("renamed", cdc.RowOf("id", int64(6), "a.b", "dotted", "$x", "dollar")),
	}
	err := p.Apply(t.Context(), batch)
	var be *cdc.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("Apply = %v, want a *cdc.BatchError", err)
	}
	for i, field := range map[int]string{0: "a.b", 1: "$set", 2: "$where", 3: "a.b"} {
		if be.Failed[i] == nil || !errors.Is(be.Failed[i], cdc.ErrPermanent) || !strings.Contains(be.Failed[i].Error(), field) {
			t.Errorf("event %d: failure %v, want a permanent one naming %q", i, be.Failed[i], field)
		}
	}
	if len(be.Failed) != 4 {
		t.Errorf("Failed = %v, want events 0..3 only", be.Failed)
	}
	if docs := allDocs(t, db, "users"); len(docs) != 1 {
		t.Errorf("users holds %d documents, want only 5", len(docs))
	}
	doc, ok := findID(t, db, "renamed", int32(6))
	if !ok {
		t.Fatal("renamed row missing")
	}
	if doc.Lookup("a_b").StringValue() != "dotted" || doc.Lookup("x").StringValue() != "dollar" {
		t.Errorf("renamed document = %s", doc)
	}
}

// TestRowErrors maps the write errors of an unordered bulk as MongoDB
// reports them: each with the index of its op, every other op applied
// (the reply's counts cover all ops). A reply that does not cover every op
// is incomplete (the caller bisects); a non-row error is transient.
func TestRowErrors(t *testing.T) {
	replace := &op{doc: bson.Raw{}}
	del := &op{del: true}
	tombstone := &op{del: true, version: 3, doc: bson.Raw{}}
	ops := []*op{replace, replace, del, replace, tombstone}
	we := func(i, code int) mongo.BulkWriteError {
		return mongo.BulkWriteError{WriteError: mongo.WriteError{Index: i, Code: code, Message: "m"}}
	}
	exc := func(errs ...mongo.BulkWriteError) error { return mongo.BulkWriteException{WriteErrors: errs} }
	cases := []struct {
		name      string
		res       *mongo.BulkWriteResult
		err       error
		rows      []int
		complete  bool
		transient bool
	}{
		// ops 1 (duplicate key on a unique index) and 3 (immutable _id)
		// fail; 0 matched, 4 upserted a tombstone, 2 deleted.
		{"mongodb", &mongo.BulkWriteResult{MatchedCount: 1, UpsertedCount: 1, DeletedCount: 1},
			exc(we(1, 11000), we(3, 66)), []int{1, 3}, true, false},
		{"absent delete counts nowhere", &mongo.BulkWriteResult{MatchedCount: 3},
			exc(we(1, 11000)), []int{1}, true, false},
		{"stopped early", &mongo.BulkWriteResult{MatchedCount: 1},
			exc(we(0, 11000)), []int{0}, false, false},
		{"no counts", nil, exc(we(1, 11000)), []int{1}, false, false},
		{"index out of range", &mongo.BulkWriteResult{MatchedCount: 4}, exc(we(9, 11000)), nil, false, false},
		{"error on a delete", &mongo.BulkWriteResult{MatchedCount: 4}, exc(we(2, 2)), []int{2}, false, false},
		{"write conflict", &mongo.BulkWriteResult{}, exc(we(1, 11000), we(3, 112)), nil, false, true},
		{"retryable label", &mongo.BulkWriteResult{},
			mongo.BulkWriteException{WriteErrors: []mongo.BulkWriteError{we(1, 11000)}, Labels: []string{"RetryableWriteError"}}, nil, false, true},
		{"write concern", &mongo.BulkWriteResult{},
			mongo.BulkWriteException{WriteConcernError: &mongo.WriteConcernError{Code: 64}}, nil, false, true},
		{"network", nil, errors.New("connection reset"), nil, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rows, complete, err := rowErrors(ops, c.res, c.err)
			if (err != nil) != c.transient {
				t.Fatalf("err = %v, want transient %v", err, c.transient)
			}
			if got := slices.Sorted(maps.Keys(rows)); !slices.Equal(got, c.rows) {
				t.Errorf("rows = %v, want %v", got, c.rows)
			}
			if complete != c.complete {
				t.Errorf("complete = %v, want %v", complete, c.complete)
			}
		})
	}
}
