package mongo

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rowsync/rowsync/cdc"
)

// planned plans events with the rule of db.users and returns the write
// models in the order write sends them: the moves' deletes, then the ops.
func planned(t *testing.T, p *Projector, events ...cdc.Event) []mongo.WriteModel {
	t.Helper()
	pl := &plan{index: map[string]*op{}}
	for i := range events {
		e := &events[i]
		tr := p.tables.Lookup(e.DB, e.Table)
		if err := p.plan(pl, i, e, tr); err != nil {
			t.Fatalf("plan event %d: %v", i, err)
		}
	}
	if err := pl.failed.Err(); err != nil {
		t.Fatal(err)
	}
	var out []mongo.WriteModel
	for _, o := range pl.ops {
		for _, sh := range o.moves {
			m := &op{t: o.t, id: o.id, version: o.version, shard: sh, move: true}
			out = append(out, m.model(o.t.rule))
		}
	}
	for _, o := range pl.ops {
		out = append(out, o.model(o.t.rule))
	}
	return out
}

// describe renders a write model as "kind filter" in extended JSON.
func describe(t *testing.T, m mongo.WriteModel) string {
	t.Helper()
	switch x := m.(type) {
	case *mongo.ReplaceOneModel:
		return "replace " + extJSON(t, x.Filter)
	case *mongo.DeleteOneModel:
		return "delete " + extJSON(t, x.Filter)
	}
	t.Fatalf("unexpected model %T", m)
	return ""
}

// TestShardKeyFilters: with shard_key every upsert and delete filter holds
// the shard key beside _id; an update that changes the shard key (same
// _id) deletes the document at the old value first.
func TestShardKeyFilters(t *testing.T) {
	p, err := New(context.Background(), testClient, Config{}, rules(t, `shop\.users`,
		TableConfig{ShardKey: []string{"region", "tenant"}, Rename: map[string]string{"tenant": "t"}}, "id"), nil)
	if err != nil {
		t.Fatal(err)
	}
	cols := []cdc.Column{cdc.ParseColumnType("id", "int"), cdc.ParseColumnType("region", "varchar(8)"),
		cdc.ParseColumnType("tenant", "int"), cdc.ParseColumnType("name", "varchar(8)")}
	ev := func(op cdc.Op, before, after *cdc.Row) cdc.Event {
		return cdc.Event{DB: "shop", Table: "users", Op: op, PK: []string{"id"}, Before: before, After: after, Columns: cols}
	}
	row := func(id int64, region string, tenant int64) *cdc.Row {
		return cdc.RowOf("id", id, "region", region, "tenant", tenant, "name", "n")
	}
	cases := []struct {
		name   string
		events []cdc.Event
		want   []string
	}{
		{"insert", []cdc.Event{ev(cdc.Insert, nil, row(1, "eu", 7))},
			[]string{`replace {"_id":{"$numberInt":"1"},"region":"eu","t":{"$numberInt":"7"}}`}},
		{"delete", []cdc.Event{ev(cdc.Delete, row(1, "eu", 7), nil)},
			[]string{`delete {"_id":{"$numberInt":"1"},"region":"eu","t":{"$numberInt":"7"}}`}},
		{"update in place", []cdc.Event{ev(cdc.Update, row(1, "eu", 7), row(1, "eu", 7))},
			[]string{`replace {"_id":{"$numberInt":"1"},"region":"eu","t":{"$numberInt":"7"}}`}},
		{"shard key change moves", []cdc.Event{ev(cdc.Update, row(1, "eu", 7), row(1, "us", 7))},
			[]string{
				`delete {"_id":{"$numberInt":"1"},"region":"eu","t":{"$numberInt":"7"}}`,
				`replace {"_id":{"$numberInt":"1"},"region":"us","t":{"$numberInt":"7"}}`,
			}},
		{"maxwell old holds only changed columns", []cdc.Event{ev(cdc.Update, cdc.RowOf("tenant", int64(6)), row(1, "eu", 7))},
			[]string{
				`delete {"_id":{"$numberInt":"1"},"region":"eu","t":{"$numberInt":"6"}}`,
				`replace {"_id":{"$numberInt":"1"},"region":"eu","t":{"$numberInt":"7"}}`,
			}},
		{"pk change deletes at the old shard key", []cdc.Event{ev(cdc.Update, row(1, "eu", 7), row(2, "us", 7))},
			[]string{
				`delete {"_id":{"$numberInt":"1"},"region":"eu","t":{"$numberInt":"7"}}`,
				`replace {"_id":{"$numberInt":"2"},"region":"us","t":{"$numberInt":"7"}}`,
			}},
		{"insert then move then delete in one call", []cdc.Event{
			ev(cdc.Insert, nil, row(1, "eu", 7)),
			ev(cdc.Update, row(1, "eu", 7), row(1, "us", 7)),
			ev(cdc.Delete, row(1, "us", 7), nil)},
			[]string{
				`delete {"_id":{"$numberInt":"1"},"region":"eu","t":{"$numberInt":"7"}}`,
				`delete {"_id":{"$numberInt":"1"},"region":"us","t":{"$numberInt":"7"}}`,
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			models := planned(t, p, c.events...)
			var got []string
			for _, m := range models {
				got = append(got, describe(t, m))
			}
			if len(got) != len(c.want) {
				t.Fatalf("models:\n %v\nwant:\n %v", got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Errorf("model %d: %s\nwant       %s", i, got[i], c.want[i])
				}
			}
		})
	}
	// A shard key value that is not a scalar never reaches a filter.
	pl := &plan{index: map[string]*op{}}
	bad := ev(cdc.Delete, cdc.RowOf("id", int64(1), "region", cdc.JSON(`{"$ne":null}`), "tenant", int64(7)), nil)
	if err := p.plan(pl, 0, &bad, p.tables.Lookup("shop", "users")); err == nil {
		t.Error("a JSON shard key value was planned")
	}
	missing := ev(cdc.Delete, cdc.RowOf("id", int64(1), "region", "eu"), nil)
	if err := p.plan(pl, 0, &missing, p.tables.Lookup("shop", "users")); err == nil {
		t.Error("a delete without its shard key was planned")
	}
}

// TestShardKeyMove applies shard key moves to the server (an unsharded
// collection, where _id is unique across shard key values), unguarded and
// guarded: the document ends at its last value, once, and a replay ends
// the same.
func TestShardKeyMove(t *testing.T) {
	for _, guarded := range []bool{false, true} {
		t.Run(fmt.Sprintf("guarded=%v", guarded), func(t *testing.T) {
			db := uniqueDB(t)
			tc := TableConfig{ShardKey: []string{"region"}}
			if guarded {
				tc.VersionField = "_v"
			}
			p := newProjector(t, rules(t, db+`\.users`, tc, "id"))
			version := uint64(0)
			ev := func(op cdc.Op, before, after *cdc.Row) cdc.Event {
				version++
				return cdc.Event{DB: db, Table: "users", Op: op, PK: []string{"id"}, Before: before, After: after,
					Pos: cdc.Position{Version: version}}
			}
			row := func(id int64, region string) *cdc.Row { return cdc.RowOf("id", id, "region", region) }
			steps := [][]cdc.Event{
				{ev(cdc.Insert, nil, row(1, "eu")), ev(cdc.Insert, nil, row(2, "eu"))},
				{ev(cdc.Update, row(1, "eu"), row(1, "us"))},
				{ev(cdc.Update, row(1, "us"), row(1, "ap")), ev(cdc.Update, row(1, "ap"), row(1, "eu")), ev(cdc.Update, row(2, "eu"), row(2, "us"))},
			}
			want := [][]string{
				{`{"_id":1,"id":1,"region":"eu"}`, `{"_id":2,"id":2,"region":"eu"}`},
				{`{"_id":1,"id":1,"region":"us"}`, `{"_id":2,"id":2,"region":"eu"}`},
				{`{"_id":1,"id":1,"region":"eu"}`, `{"_id":2,"id":2,"region":"us"}`},
			}
			for i, batch := range steps {
				for range 2 { // a replay ends the same
					if err := p.Apply(t.Context(), batch); err != nil {
						t.Fatalf("step %d: %v", i, err)
					}
					var got []string
					for _, d := range allDocs(t, db, "users") {
						var doc bson.D
						if err := bson.Unmarshal(d, &doc); err != nil {
							t.Fatal(err)
						}
						doc = slices.DeleteFunc(doc, func(e bson.E) bool { return e.Key == "_v" })
						b, err := bson.MarshalExtJSON(doc, false, false)
						if err != nil {
							t.Fatal(err)
						}
						got = append(got, string(b))
					}
					if !slices.Equal(got, want[i]) {
						t.Errorf("step %d: documents %v, want %v", i, got, want[i])
					}
				}
			}
		})
	}
}

// TestWriteConcern: the configured write concern goes with every write.
func TestWriteConcern(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	mon := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		if e.CommandName != "update" && e.CommandName != "delete" {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		wc, err := e.Command.LookupErr("writeConcern")
		if err != nil {
			seen = append(seen, e.CommandName+" none")
			return
		}
		seen = append(seen, e.CommandName+" "+wc.String())
	}}
	cl, err := mongo.Connect(options.Client().ApplyURI(testURI).SetMonitor(mon))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Disconnect(context.Background()) })
	db := uniqueDB(t)
	cfg := testConfig()
	cfg.WriteConcern = WriteConcern{W: "1", J: new(true), WTimeout: time.Minute}
	p, err := New(t.Context(), cl, cfg, rules(t, db+`\.users`, TableConfig{}, "id"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := func(op cdc.Op, row *cdc.Row) cdc.Event {
		e := cdc.Event{DB: db, Table: "users", Op: op, PK: []string{"id"}}
		if op == cdc.Delete {
			e.Before = row
		} else {
			e.After = row
		}
		return e
	}
	if err := p.Apply(t.Context(), []cdc.Event{ev(cdc.Insert, cdc.RowOf("id", int64(1))), ev(cdc.Insert, cdc.RowOf("id", int64(2)))}); err != nil {
		t.Fatal(err)
	}
	if err := p.Apply(t.Context(), []cdc.Event{ev(cdc.Delete, cdc.RowOf("id", int64(1)))}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{`update {"w": {"$numberInt":"1"},"j": true}`, `delete {"w": {"$numberInt":"1"},"j": true}`}
	if !slices.Equal(seen, want) {
		t.Errorf("commands %q, want %q", seen, want)
	}
	if docs := allDocs(t, db, "users"); len(docs) != 1 {
		t.Errorf("%d documents, want 1", len(docs))
	}
}
