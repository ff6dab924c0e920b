package mongo

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rowsync/rowsync/cdc"
)

var benchColumns = []cdc.Column{
	cdc.ParseColumnType("id", "bigint(20)"),
	cdc.ParseColumnType("name", "varchar(64)"),
	cdc.ParseColumnType("email", "varchar(128)"),
	cdc.ParseColumnType("age", "int(11)"),
	cdc.ParseColumnType("balance", "decimal(12,2)"),
	cdc.ParseColumnType("score", "double"),
	cdc.ParseColumnType("created", "datetime(3)"),
	cdc.ParseColumnType("status", "enum('active','closed')"),
}

// benchBatch returns n updates of distinct rows, round r.
func benchBatch(db string, n, r int) []cdc.Event {
	events := make([]cdc.Event, n)
	for i := range events {
		id := int64(i)
		after := cdc.RowOf("id", id, "name", fmt.Sprintf("user %d", i), "email", fmt.Sprintf("u%d@example.com", i), "age", int64(20+i%50), "balance", cdc.Decimal(fmt.Sprintf("%d.%02d", r*1000+i, i%100)), "score", float64(i)/7, "created", time.Unix(1700000000+int64(i), 0).UTC(), "status", "active")
		events[i] = cdc.Event{DB: db, Table: "users", Op: cdc.Update, PK: []string{"id"}, Before: after, After: after,
			Columns: benchColumns, Pos: cdc.Position{Version: uint64(r*n + i + 1)}}
	}
	return events
}

// BenchmarkApply measures documents written per second by Apply (one
// unordered bulk per batch) against a naive loop of one ReplaceOne upsert
// per event, in the same run.
//
//	go test ./projector/mongo -run '^$' -bench Apply -benchtime 20x
func BenchmarkApply(b *testing.B) {
	// FerretDB scans the collection for every upsert of a numeric _id, so
	// keep the collection small: every round rewrites the same rows.
	const batch = 200
	cases := []struct {
		name string
		tc   TableConfig
	}{{"bulk", TableConfig{}}, {"bulk_guarded", TableConfig{VersionField: "_v"}}}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			db := uniqueDB(b)
			p := newProjector(b, rules(b, db+`\.users`, c.tc))
			ctx := context.Background()
			b.ResetTimer()
			for i := range b.N {
				if err := p.Apply(ctx, benchBatch(db, batch, i)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "docs/s")
		})
	}
	b.Run("naive", func(b *testing.B) {
		db := uniqueDB(b)
		coll := testClient.Database(db).Collection("users")
		ctx := context.Background()
		b.ResetTimer()
		for i := range b.N {
			for _, e := range benchBatch(db, batch, i) {
				doc := bson.M{"_id": e.After.Get("id")}
				for k, v := range e.After.All() {
					if d, ok := v.(cdc.Decimal); ok {
						v = string(d)
					}
					doc[k] = v
				}
				_, err := coll.ReplaceOne(ctx, bson.M{"_id": e.After.Get("id")}, doc, options.Replace().SetUpsert(true))
				if err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "docs/s")
	})
}

// BenchmarkDocument is the projector's CPU per document without the
// server: building and encoding the replacement document of the wide
// test row (21 columns, every type).
//
//	go test ./projector/mongo -run '^$' -bench Document -benchmem
func BenchmarkDocument(b *testing.B) {
	r := compileRule(b, TableConfig{VersionField: "_v"}, DecimalDecimal128)
	e := wideEvent(b, "shop")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.document(&e, e.After, int64(7), e.Pos.Version); err != nil {
			b.Fatal(err)
		}
	}
}
