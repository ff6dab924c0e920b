package keymap

import (
	"fmt"
	"testing"

	"github.com/rowsync/rowsync/cdc"
)

// BenchmarkRender renders the Redis projector's default key of a row.
//
//	go test -run '^$' -bench Render -benchmem ./keymap/
func BenchmarkRender(b *testing.B) {
	t := MustParse("{db}_{table}_{pk}")
	cols := []cdc.Column{cdc.ParseColumnType("id", "bigint(20)"), cdc.ParseColumnType("name", "varchar(64)")}
	in := Input{DB: "shop", Table: "orders", PK: []string{"id"}, Row: cdc.RowOf("id", int64(123456), "name", "x"), Columns: cols}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := t.Render(in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRenderLayout renders "user:{email}" from rows of a table's
// shared layout (as the binlog decoder makes them), the column first or
// last of 10 columns, or last of 30 (a layout past its linear scan).
//
//	go test -run '^$' -bench RenderLayout -benchmem ./keymap/
func BenchmarkRenderLayout(b *testing.B) {
	for _, tc := range []struct {
		name      string
		width, at int
	}{{"first_of_10", 10, 0}, {"last_of_10", 10, 9}, {"last_of_30", 30, 29}} {
		b.Run(tc.name, func(b *testing.B) {
			names := make([]string, tc.width)
			cols := make([]cdc.Column, tc.width)
			for i := range names {
				names[i] = fmt.Sprintf("c%d", i)
				if i == tc.at {
					names[i] = "email"
				}
				cols[i] = cdc.ParseColumnType(names[i], "varchar(64)")
			}
			l, err := cdc.NewLayout(names)
			if err != nil {
				b.Fatal(err)
			}
			row := cdc.NewRow(l)
			for i := range names {
				row.SetAt(i, "v")
			}
			row.SetAt(tc.at, "ann@example.com")
			t := MustParse("user:{email}")
			in := Input{DB: "shop", Table: "users", PK: []string{"c1"}, Row: row, Columns: cols}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := t.Render(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
