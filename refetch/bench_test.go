package refetch

import (
	"context"
	"database/sql"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/rowsync/rowsync/cdc"
)

const (
	benchRows  = 100_000
	benchBatch = 1000
)

// BenchmarkRefetch reads batches of 1,000 random keys from a 100k-row table
// with Refetch (one IN query per chunk of 500) and, in the same run, with a
// naive loop of one SELECT per key over the same pool and conversion.
// It reports rows/s of both and their ratio.
func BenchmarkRefetch(b *testing.B) {
	s, _ := schema(b, "bench",
		"CREATE TABLE $S.items (id BIGINT PRIMARY KEY, name VARCHAR(64), price DECIMAL(12,2),"+
			" qty INT, updated DATETIME(3), note TEXT)",
		"INSERT INTO $S.items SELECT seq, CONCAT('item-', seq), seq/100, seq % 1000,"+
			" '2024-01-02 03:04:05.678' + INTERVAL seq SECOND, REPEAT('x', 40) FROM $S.seq_1_to_100000",
	)
	r := newRefetcher(b, Config{})
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	events := make([]cdc.Event, benchBatch)
	ids := make([]int64, benchBatch)
	// warm the schema cache and the pool
	if _, err := r.Refetch(ctx, []cdc.Event{{DB: s, Table: "items", Op: cdc.Update, PK: []string{"id"}, After: cdc.RowOf("id", int64(1))}}); err != nil {
		b.Fatal(err)
	}
	ti, _ := r.table(ctx, tableKey{s, "items"})
	naiveQuery := "SELECT " + ti.sel + " FROM " + quote(s) + ".`items` WHERE `id` = ?"

	var batched, naive time.Duration
	var rows, naiveRows int
	for b.Loop() {
		for i := range events {
			ids[i] = rng.Int64N(benchRows) + 1
			events[i] = cdc.Event{DB: s, Table: "items", Op: cdc.Update, PK: []string{"id"}, After: cdc.RowOf("id", ids[i])}
		}
		start := time.Now()
		out, err := r.Refetch(ctx, events)
		if err != nil {
			b.Fatal(err)
		}
		batched += time.Since(start)
		rows += len(out)

		start = time.Now()
		n, err := naiveRead(ctx, r.db, naiveQuery, ti, ids)
		if err != nil {
			b.Fatal(err)
		}
		naive += time.Since(start)
		naiveRows += n
	}
	br := float64(rows) / batched.Seconds()
	nr := float64(naiveRows) / naive.Seconds()
	b.ReportMetric(br, "rows/s")
	b.ReportMetric(nr, "naive_rows/s")
	b.ReportMetric(br/nr, "ratio")
}

// naiveRead is the baseline: one SELECT per key, converted the same way.
func naiveRead(ctx context.Context, db *sql.DB, q string, ti *tableInfo, ids []int64) (int, error) {
	raw := make([]sql.RawBytes, len(ti.cols))
	dest := make([]any, len(raw))
	for i := range raw {
		dest[i] = &raw[i]
	}
	n := 0
	for _, id := range ids {
		rows, err := db.QueryContext(ctx, q, id)
		if err != nil {
			return n, err
		}
		for rows.Next() {
			if err := rows.Scan(dest...); err != nil {
				rows.Close()
				return n, err
			}
			row := new(cdc.Row)
			for i := range ti.cols {
				if raw[i] == nil {
					row.Set(ti.cols[i].Name, nil)
					continue
				}
				v, err := cdc.ParseText(&ti.cols[i], string(raw[i]))
				if err != nil {
					rows.Close()
					return n, err
				}
				row.Set(ti.cols[i].Name, v)
			}
			n++
		}
		if err := rows.Close(); err != nil {
			return n, err
		}
	}
	return n, nil
}

// BenchmarkTableRow types one row of BenchmarkRefetch's items table read
// as text, without the server: the per-row CPU of a refetch or backfill
// read beside the round trip.
func BenchmarkTableRow(b *testing.B) {
	ti, err := newTableInfo(cdc.NewTableDef([]cdc.Column{
		cdc.ParseColumnType("id", "bigint(20)"),
		cdc.ParseColumnType("name", "varchar(64)"),
		cdc.ParseColumnType("price", "decimal(12,2)"),
		cdc.ParseColumnType("qty", "int(11)"),
		cdc.ParseColumnType("updated", "datetime(3)"),
		cdc.ParseColumnType("note", "text"),
	}, []string{"id"}))
	if err != nil {
		b.Fatal(err)
	}
	raw := []sql.RawBytes{[]byte("42"), []byte("item-42"), []byte("0.42"), []byte("42"), []byte("2024-01-02 03:04:47.678"), nil}
	b.ReportAllocs()
	for b.Loop() {
		row, err := ti.row(raw)
		if err != nil || row.Len() != 6 {
			b.Fatal(row, err)
		}
	}
}
