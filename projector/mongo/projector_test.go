package mongo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/internal/sinktest"
)

func TestConformance(t *testing.T) {
	for _, guarded := range []bool{false, true} {
		t.Run(fmt.Sprintf("guarded=%v", guarded), func(t *testing.T) {
			tc := TableConfig{}
			if guarded {
				tc.VersionField = "_v"
			}
			sinktest.Run(t, sinktest.Harness{
				New: func(t *testing.T, db string) cdc.Sink {
					uniqueDropped(t, db)
					return newProjector(t, rules(t, db+`\..*`, tc))
				},
				Read:    readRow,
				Guarded: guarded,
			})
		})
	}
}

// uniqueDropped drops database db when the test ends.
func uniqueDropped(t *testing.T, db string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = testClient.Database(db).Drop(ctx)
	})
}

// readRow reads a sinktest row back as MySQL text, skipping nulls, the
// version field and tombstones.
func readRow(t *testing.T, db, table string, pk []string) (map[string]string, bool) {
	id, err := strconv.ParseInt(pk[0], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	raw, ok := findID(t, db, table, id)
	if !ok {
		return nil, false
	}
	if v, err := raw.LookupErr(DeletedField); err == nil && v.Boolean() {
		return nil, false
	}
	out := map[string]string{}
	for i := range sinktest.Columns {
		c := &sinktest.Columns[i]
		rv, err := raw.LookupErr(c.Name)
		if err != nil || rv.Type == bson.TypeNull {
			continue
		}
		var v cdc.Value
		switch rv.Type {
		case bson.TypeInt64:
			v = rv.Int64()
		case bson.TypeInt32:
			v = int64(rv.Int32())
		case bson.TypeString:
			v = rv.StringValue()
			if c.Kind == cdc.KindDecimal {
				v = cdc.Decimal(rv.StringValue())
			}
		case bson.TypeDecimal128:
			v = cdc.Decimal(rv.Decimal128().String())
		case bson.TypeDateTime:
			v = rv.Time().UTC()
		case bson.TypeBinary:
			_, b := rv.Binary()
			v = b
		default:
			t.Fatalf("column %s: unexpected BSON type %s", c.Name, rv.Type)
		}
		s, _ := cdc.FormatText(c, v)
		out[c.Name] = s
	}
	return out, true
}

// TestTypesRoundTrip writes the wide row and reads the stored document
// back byte for byte.
func TestTypesRoundTrip(t *testing.T) {
	db := uniqueDB(t)
	p := newProjector(t, rules(t, db+`\.wide`, TableConfig{Metadata: "_rowsync"}))
	e := wideEvent(t, db)
	if err := p.Apply(t.Context(), []cdc.Event{e}); err != nil {
		t.Fatal(err)
	}
	r := p.tables.Lookup(db, "wide").Config
	want, err := r.document(&e, e.After, int64(7), 0)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := findID(t, db, "wide", int64(7))
	if !ok {
		t.Fatal("document missing")
	}
	if !bytes.Equal(got, want) {
		t.Errorf("stored document differs:\n got  %s\n want %s", extJSON(t, got), extJSON(t, want))
	}
	if !ferret {
		return
	}
	// FerretDB: the decimal fields are text; Decimal128 is left to real MongoDB.
	if v := got.Lookup("price"); v.Type != bson.TypeString || v.StringValue() != "1234.50" {
		t.Errorf("price = %v, want \"1234.50\"", v)
	}
}

func TestIDShapes(t *testing.T) {
	db := uniqueDB(t)
	rs := append(rules(t, db+`\.pair`, TableConfig{Rename: map[string]string{"a": "alpha"}}, "a", "b"),
		rules(t, db+`\.tmpl`, TableConfig{ID: "user:{email|lower}"})...)
	p := newProjector(t, rs)
	cols := []cdc.Column{cdc.ParseColumnType("a", "int"), cdc.ParseColumnType("b", "varchar(10)"), cdc.ParseColumnType("email", "varchar(64)")}
	row := cdc.RowOf("a", int64(1), "b", "x", "email", "Ann@Example.COM")
	err := p.Apply(t.Context(), []cdc.Event{
		{DB: db, Table: "pair", Op: cdc.Insert, After: row, Columns: cols}, // PK from the rule
		{DB: db, Table: "tmpl", Op: cdc.Insert, PK: []string{"a"}, After: row, Columns: cols},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, ok := findID(t, db, "pair", bson.D{{Key: "alpha", Value: int32(1)}, {Key: "b", Value: "x"}})
	if !ok {
		t.Fatalf("composite _id not found; have %v", allDocs(t, db, "pair"))
	}
	if v := got.Lookup("alpha"); v.Int32() != 1 {
		t.Errorf("alpha = %v", v)
	}
	if _, ok := findID(t, db, "tmpl", "user:ann@example.com"); !ok {
		t.Errorf("template _id not found; have %v", allDocs(t, db, "tmpl"))
	}
}

func TestRenameIncludeExclude(t *testing.T) {
	db := uniqueDB(t)
	rs := append(rules(t, db+`\.inc`, TableConfig{Include: []string{"id", "name"}, Rename: map[string]string{"name": "fullName"}}),
		rules(t, db+`\.exc`, TableConfig{Exclude: []string{"secret"}, Database: db, Collection: "renamed"})...)
	p := newProjector(t, rs)
	cols := []cdc.Column{cdc.ParseColumnType("id", "int"), cdc.ParseColumnType("name", "varchar(9)"), cdc.ParseColumnType("secret", "varchar(9)")}
	row := cdc.RowOf("id", int64(1), "name", "ann", "secret", "pw")
	ev := func(table string) cdc.Event {
		return cdc.Event{DB: db, Table: table, Op: cdc.Insert, PK: []string{"id"}, After: row, Columns: cols}
	}
	if err := p.Apply(t.Context(), []cdc.Event{ev("inc"), ev("exc")}); err != nil {
		t.Fatal(err)
	}
	check := func(coll, want string) {
		t.Helper()
		docs := allDocs(t, db, coll)
		if len(docs) != 1 || extJSON(t, docs[0]) != want {
			t.Errorf("%s: got %v, want [%s]", coll, docs, want)
		}
	}
	check("inc", `{"_id":{"$numberInt":"1"},"id":{"$numberInt":"1"},"fullName":"ann"}`)
	check("renamed", `{"_id":{"$numberInt":"1"},"id":{"$numberInt":"1"},"name":"ann"}`)
}

func TestMetadata(t *testing.T) {
	db := uniqueDB(t)
	p := newProjector(t, rules(t, db+`\.t`, TableConfig{Metadata: "_rowsync"}))
	commit := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	e := cdc.Event{DB: db, Table: "t", Op: cdc.Insert, PK: []string{"id"}, After: cdc.RowOf("id", int64(1)),
		Commit: commit, Pos: cdc.Position{Text: "mysql-bin.000001:99"}}
	noCommit := e
	noCommit.After, noCommit.Commit = cdc.RowOf("id", int64(2)), time.Time{}
	if err := p.Apply(t.Context(), []cdc.Event{e, noCommit}); err != nil {
		t.Fatal(err)
	}
	docs := allDocs(t, db, "t")
	want := []string{
		`{"_id":{"$numberLong":"1"},"id":{"$numberLong":"1"},"_rowsync":{"pos":"mysql-bin.000001:99","commit":{"$date":{"$numberLong":"1714564800000"}}}}`,
		`{"_id":{"$numberLong":"2"},"id":{"$numberLong":"2"},"_rowsync":{"pos":"mysql-bin.000001:99","commit":null}}`,
	}
	for i, d := range docs {
		if got := extJSON(t, d); i >= len(want) || got != want[i] {
			t.Errorf("doc %d = %s", i, got)
		}
	}
	if len(docs) != 2 {
		t.Errorf("%d documents, want 2", len(docs))
	}
}

func indexNames(t *testing.T, db, coll string) []string {
	t.Helper()
	cur, err := testClient.Database(db).Collection(coll).Indexes().List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for cur.Next(t.Context()) {
		names = append(names, cur.Current.Lookup("name").StringValue())
	}
	slices.Sort(names)
	return names
}

func TestIndexes(t *testing.T) {
	db := uniqueDB(t)
	ix := []Index{{Keys: IndexKeys{{"email", 1}}, Unique: true, Name: "email_u"}, {Keys: IndexKeys{{"a", 1}, {"b", -1}}}}
	// A literal table: created by New. A pattern: created on first use.
	rs := append(rules(t, db+`\.users`, TableConfig{Indexes: ix}),
		rules(t, db+`\.logs_.*`, TableConfig{Indexes: ix[1:]})...)
	p := newProjector(t, rs)
	if got, want := indexNames(t, db, "users"), []string{"_id_", "a_1_b_-1", "email_u"}; !slices.Equal(got, want) {
		t.Errorf("users indexes after New = %v, want %v", got, want)
	}
	e := cdc.Event{DB: db, Table: "logs_1", Op: cdc.Insert, PK: []string{"id"}, After: cdc.RowOf("id", int64(1))}
	if err := p.Apply(t.Context(), []cdc.Event{e}); err != nil {
		t.Fatal(err)
	}
	if got, want := indexNames(t, db, "logs_1"), []string{"_id_", "a_1_b_-1"}; !slices.Equal(got, want) {
		t.Errorf("logs_1 indexes after Apply = %v, want %v", got, want)
	}
	// A second projector over existing indexes starts fine.
	newProjector(t, rs)
}

func TestUniqueIndexBatchError(t *testing.T) {
	db := uniqueDB(t)
	p := newProjector(t, rules(t, db+`\.users`, TableConfig{Indexes: []Index{{Keys: IndexKeys{{"email", 1}}, Unique: true}}}))
	user := func(id int64, email string) cdc.Event {
		return cdc.Event{DB: db, Table: "users", Op: cdc.Insert, PK: []string{"id"},
			After: cdc.RowOf("id", id, "email", email), Columns: []cdc.Column{cdc.ParseColumnType("id", "int"), cdc.ParseColumnType("email", "varchar(64)")}}
	}
	batch := []cdc.Event{user(1, "a@x"), user(2, "a@x"), user(3, "b@x"), user(4, "c@x"), user(5, "b@x"), user(6, "d@x")}
	for round := range 2 { // and again: a replay fails the same way
		err := p.Apply(t.Context(), batch)
		var be *cdc.BatchError
		if !errors.As(err, &be) {
			t.Fatalf("round %d: Apply = %v, want a *cdc.BatchError", round, err)
		}
		if len(be.Failed) != 2 || be.Failed[1] == nil || be.Failed[4] == nil {
			t.Errorf("round %d: Failed = %v, want events 1 and 4", round, be.Failed)
		}
		if !errors.Is(be.Failed[1], cdc.ErrPermanent) {
			t.Errorf("failure not marked permanent: %v", be.Failed[1])
		}
		for _, id := range []int64{1, 3, 4, 6} {
			if _, ok := findID(t, db, "users", int32(id)); !ok {
				t.Errorf("round %d: user %d missing", round, id)
			}
		}
		for _, id := range []int64{2, 5} {
			if _, ok := findID(t, db, "users", int32(id)); ok {
				t.Errorf("round %d: user %d written despite the unique index", round, id)
			}
		}
	}
}

func TestDocumentTooLarge(t *testing.T) {
	db := uniqueDB(t)
	p := newProjector(t, rules(t, db+`\.t`, TableConfig{}))
	big := cdc.Event{DB: db, Table: "t", Op: cdc.Insert, PK: []string{"id"}, After: cdc.RowOf("id", int64(2), "blob", make([]byte, MaxDocumentSize))}
	ok := cdc.Event{DB: db, Table: "t", Op: cdc.Insert, PK: []string{"id"}, After: cdc.RowOf("id", int64(1))}
	err := p.Apply(t.Context(), []cdc.Event{ok, big})
	var be *cdc.BatchError
	if !errors.As(err, &be) || len(be.Failed) != 1 || be.Failed[1] == nil {
		t.Fatalf("Apply = %v, want a BatchError for event 1", err)
	}
	if docs := allDocs(t, db, "t"); len(docs) != 1 {
		t.Errorf("%d documents, want 1", len(docs))
	}
}

// countingClient counts the write commands and their operations.
type counter struct {
	mu       sync.Mutex
	commands map[string]int
	ops      int
}

func countingClient(t *testing.T) (*mongo.Client, *counter) {
	c := &counter{commands: map[string]int{}}
	mon := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		if e.CommandName != "update" && e.CommandName != "delete" {
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		c.commands[e.CommandName]++
		field := "updates"
		if e.CommandName == "delete" {
			field = "deletes"
		}
		if arr, err := e.Command.LookupErr(field); err == nil {
			vals, _ := arr.Array().Values()
			c.ops += len(vals)
		}
	}}
	cl, err := mongo.Connect(options.Client().ApplyURI(testURI).SetMonitor(mon))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Disconnect(context.Background()) })
	return cl, c
}

func (c *counter) reset() (map[string]int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cmds, ops := c.commands, c.ops
	c.commands, c.ops = map[string]int{}, 0
	return cmds, ops
}

func TestCoalescing(t *testing.T) {
	db := uniqueDB(t)
	cl, count := countingClient(t)
	p, err := New(t.Context(), cl, testConfig(), rules(t, db+`\.t`, TableConfig{}), nil)
	if err != nil {
		t.Fatal(err)
	}
	row := func(id, n int64) *cdc.Row { return cdc.RowOf("id", id, "n", n) }
	var batch []cdc.Event
	for n := range int64(200) {
		batch = append(batch, cdc.Event{DB: db, Table: "t", Op: cdc.Update, PK: []string{"id"}, Before: row(1, n-1), After: row(1, n)})
	}
	batch = append(batch,
		cdc.Event{DB: db, Table: "t", Op: cdc.Insert, PK: []string{"id"}, After: row(2, 0)},
		cdc.Event{DB: db, Table: "t", Op: cdc.Delete, PK: []string{"id"}, Before: row(2, 0)},
		cdc.Event{DB: db, Table: "t", Op: cdc.Insert, PK: []string{"id"}, After: row(3, 0)},
		cdc.Event{DB: db, Table: "t", Op: cdc.Delete, PK: []string{"id"}, Before: row(3, 0)},
		cdc.Event{DB: db, Table: "t", Op: cdc.Insert, PK: []string{"id"}, After: row(3, 7)},
	)
	count.reset()
	if err := p.Apply(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	cmds, ops := count.reset()
	// One unordered bulk: the driver sends one update and one delete command.
	if cmds["update"] != 1 || cmds["delete"] != 1 || ops != 3 {
		t.Errorf("commands %v with %d ops, want one update and one delete with 3 ops", cmds, ops)
	}
	docs := allDocs(t, db, "t")
	want := []string{`{"_id":{"$numberLong":"1"},"id":{"$numberLong":"1"},"n":{"$numberLong":"199"}}`,
		`{"_id":{"$numberLong":"3"},"id":{"$numberLong":"3"},"n":{"$numberLong":"7"}}`}
	var got []string
	for _, d := range docs {
		got = append(got, extJSON(t, d))
	}
	if !slices.Equal(got, want) {
		t.Errorf("documents:\n got  %v\n want %v", got, want)
	}
}

func TestPKChangeAndReplay(t *testing.T) {
	db := uniqueDB(t)
	p := newProjector(t, rules(t, db+`\.t`, TableConfig{}))
	row := func(id int64, s string) *cdc.Row { return cdc.RowOf("id", id, "s", s) }
	ev := func(op cdc.Op, before, after *cdc.Row) cdc.Event {
		return cdc.Event{DB: db, Table: "t", Op: op, PK: []string{"id"}, Before: before, After: after}
	}
	batch := []cdc.Event{
		ev(cdc.Insert, nil, row(1, "a")),
		ev(cdc.Update, row(1, "a"), row(2, "a")), // pk 1 -> 2
		ev(cdc.Insert, nil, row(5, "e")),
		ev(cdc.Update, cdc.RowOf("s", "e"), row(5, "e2")), // Maxwell-style partial before image
	}
	want := []string{`{"_id":{"$numberLong":"2"},"id":{"$numberLong":"2"},"s":"a"}`, `{"_id":{"$numberLong":"5"},"id":{"$numberLong":"5"},"s":"e2"}`}
	for round := range 3 {
		if err := p.Apply(t.Context(), batch); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, d := range allDocs(t, db, "t") {
			got = append(got, extJSON(t, d))
		}
		if !slices.Equal(got, want) {
			t.Errorf("round %d:\n got  %v\n want %v", round, got, want)
		}
	}
	// Across batches, and back.
	if err := p.Apply(t.Context(), []cdc.Event{ev(cdc.Update, row(2, "a"), row(1, "back"))}); err != nil {
		t.Fatal(err)
	}
	if _, ok := findID(t, db, "t", int64(2)); ok {
		t.Error("old _id 2 still present")
	}
	if d, ok := findID(t, db, "t", int64(1)); !ok || d.Lookup("s").StringValue() != "back" {
		t.Errorf("_id 1 = %v", d)
	}
}

func TestVersionGuard(t *testing.T) {
	db := uniqueDB(t)
	cl, count := countingClient(t)
	p, err := New(t.Context(), cl, testConfig(), rules(t, db+`\.t`, TableConfig{VersionField: "_v", TombstoneTTL: time.Hour}), nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := func(op cdc.Op, id int64, s string, ver uint64) cdc.Event {
		e := cdc.Event{DB: db, Table: "t", Op: op, PK: []string{"id"}, Pos: cdc.Position{Version: ver}}
		row := cdc.RowOf("id", id, "s", s)
		if op != cdc.Insert {
			e.Before = row
		}
		if op != cdc.Delete {
			e.After = row
		}
		return e
	}
	state := func(id int64) string {
		d, ok := findID(t, db, "t", id)
		if !ok {
			return "absent"
		}
		return extJSON(t, d)
	}
	apply := func(events ...cdc.Event) {
		t.Helper()
		if err := p.Apply(t.Context(), events); err != nil {
			t.Fatal(err)
		}
	}
	apply(ev(cdc.Insert, 1, "v10", 10), ev(cdc.Insert, 2, "v10", 10))
	apply(ev(cdc.Update, 1, "v20", 20), ev(cdc.Delete, 2, "", 20))
	if got := state(1); got != `{"_id":{"$numberLong":"1"},"id":{"$numberLong":"1"},"s":"v20","_v":{"$numberLong":"20"}}` {
		t.Errorf("row 1 = %s", got)
	}
	tomb, ok := findID(t, db, "t", int64(2))
	if !ok || !tomb.Lookup(DeletedField).Boolean() || tomb.Lookup("_v").Int64() != 20 || tomb.Lookup(DeletedAtField).Type != bson.TypeDateTime {
		t.Errorf("row 2 tombstone = %v", tomb)
	}
	// Replays and stale changes: skipped, no error, and (being known
	// stale up front) not even sent.
	before1, before2 := state(1), state(2)
	count.reset()
	apply(ev(cdc.Insert, 1, "v10", 10), ev(cdc.Update, 1, "v20", 20), ev(cdc.Insert, 2, "late", 15))
	if cmds, _ := count.reset(); len(cmds) != 0 {
		t.Errorf("stale batch sent %v", cmds)
	}
	if state(1) != before1 || state(2) != before2 {
		t.Errorf("stale batch changed state:\n %s\n %s", state(1), state(2))
	}
	// A newer insert revives the row; unguarded (version 0) writes apply.
	apply(ev(cdc.Insert, 2, "v30", 30), ev(cdc.Update, 1, "unversioned", 0))
	if got := state(2); !strings.Contains(got, `"s":"v30"`) || strings.Contains(got, DeletedField) {
		t.Errorf("row 2 = %s", got)
	}
	if got := state(1); got != `{"_id":{"$numberLong":"1"},"id":{"$numberLong":"1"},"s":"unversioned"}` {
		t.Errorf("row 1 = %s", got)
	}
	// In one batch, out of order: the newer change wins.
	apply(ev(cdc.Update, 3, "v50", 50), ev(cdc.Update, 3, "v40", 40))
	if got := state(3); !strings.Contains(got, `"s":"v50"`) {
		t.Errorf("row 3 = %s", got)
	}
	if ferret {
		return
	}
	if got := indexNames(t, db, "t"); !slices.Contains(got, "rowsync_tombstone_ttl") {
		t.Errorf("indexes %v lack the tombstone TTL index", got)
	}
}

// TestVersionRace covers a guarded write that loses on the server rather
// than in the version pre-read: another writer stored a newer version in
// between. The duplicate key error it raises counts as stale, not failed.
func TestVersionRace(t *testing.T) {
	db := uniqueDB(t)
	p := newProjector(t, rules(t, db+`\.t`, TableConfig{VersionField: "_v"}))
	tg := p.target(db, "t", p.tables.Lookup(db, "t").Config)
	if err := p.ensure(t.Context(), tg); err != nil {
		t.Fatal(err)
	}
	if _, err := tg.coll.InsertOne(t.Context(), bson.D{{Key: "_id", Value: int64(1)}, {Key: "_v", Value: int64(100)}, {Key: "s", Value: "newer"}}); err != nil {
		t.Fatal(err)
	}
	e := cdc.Event{DB: db, Table: "t", Op: cdc.Insert, PK: []string{"id"}, Pos: cdc.Position{Version: 50}, After: cdc.RowOf("id", int64(1), "s", "older")}
	e2 := cdc.Event{DB: db, Table: "t", Op: cdc.Insert, PK: []string{"id"}, Pos: cdc.Position{Version: 50}, After: cdc.RowOf("id", int64(2), "s", "fresh")}
	pl := &plan{index: map[string]*op{}, now: time.Now()}
	for i, ev := range []cdc.Event{e, e2} {
		if err := p.plan(pl, i, &ev, p.tables.Lookup(db, "t")); err != nil {
			t.Fatal(err)
		}
	}
	// Bypass the pre-read: send the bulk as if the newer write had come
	// after it.
	if err := p.send(t.Context(), tg, pl.ops, pl); err != nil {
		t.Fatal(err)
	}
	if err := pl.failed.Err(); err != nil {
		t.Errorf("failed = %v, want none (stale)", err)
	}
	if d, _ := findID(t, db, "t", int64(1)); d.Lookup("s").StringValue() != "newer" {
		t.Errorf("row 1 = %v", d)
	}
	if _, ok := findID(t, db, "t", int64(2)); !ok {
		t.Error("row 2 missing: the op after the stale one was not applied")
	}
}

func TestApplyContextAndErrors(t *testing.T) {
	db := uniqueDB(t)
	p := newProjector(t, rules(t, db+`\.t`, TableConfig{}))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := p.Apply(ctx, []cdc.Event{{DB: db, Table: "t", Op: cdc.Insert, PK: []string{"id"}, After: cdc.RowOf("id", int64(1))}}); !errors.Is(err, context.Canceled) {
		t.Errorf("Apply(cancelled) = %v", err)
	}
	// Events of other tables are ignored; bad events fail alone.
	err := p.Apply(t.Context(), []cdc.Event{
		{DB: "other", Table: "t", Op: cdc.Insert, After: cdc.RowOf("id", int64(1))},
		{DB: db, Table: "t", Op: cdc.Insert, PK: []string{"id"}},                                                                                       // no after image
		{DB: db, Table: "t", Op: cdc.Delete, PK: []string{"id"}},                                                                                       // no before image
		{DB: db, Table: "t", Op: cdc.Insert, After: cdc.RowOf("id", int64(1))},                                                                         // no pk
		{DB: db, Table: "t", Op: cdc.Insert, PK: []string{"id"}, After: cdc.RowOf("id", "x"), Columns: []cdc.Column{cdc.ParseColumnType("id", "int")}}, // bad text
		{DB: db, Table: "t", Op: cdc.Insert, PK: []string{"id"}, After: cdc.RowOf("id", int64(9))},
	})
	var be *cdc.BatchError
	if !errors.As(err, &be) || len(be.Failed) != 4 || be.Failed[0] != nil || be.Failed[5] != nil {
		t.Errorf("Apply = %v, want events 1-4 failed", err)
	}
	if !p.Wants(db, "t") || p.Wants(db, "u") {
		t.Error("Wants answers wrong")
	}
	if err := p.Ping(t.Context()); err != nil {
		t.Error(err)
	}
	if err := p.CheckSchema(db, "t", []string{"id"}, []string{"id"}); err != nil {
		t.Error(err)
	}
}

func TestOpenUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cfg := Config{URI: "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300&connectTimeoutMS=300"}
	p, err := Open(ctx, cfg, nil, nil)
	if err != nil {
		t.Fatal(err) // connecting is lazy
	}
	defer p.Close(ctx)
	if err := p.Ping(ctx); err == nil {
		t.Error("Ping to a closed port = nil")
	}
	e := cdc.Event{DB: "d", Table: "t", Op: cdc.Insert, PK: []string{"id"}, After: cdc.RowOf("id", int64(1))}
	p2, err := Open(ctx, cfg, rules(t, `d\..*`, TableConfig{}), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close(ctx)
	err = p2.Apply(ctx, []cdc.Event{e})
	var be *cdc.BatchError
	if err == nil || errors.As(err, &be) {
		t.Errorf("Apply to a closed port = %v, want a transient error", err)
	}
	if _, err := Open(ctx, Config{}, nil, nil); err == nil || !strings.Contains(err.Error(), "uri: required") {
		t.Errorf("Open without uri = %v", err)
	}
}
