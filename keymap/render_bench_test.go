package keymap

import (
	"testing"

	"github.com/rowsync/rowsync/cdc"
)

// BenchmarkRender renders the Redis projector's default key of a row.
//
//	go test -run '^$' -bench Render -benchmem ./keymap/
func BenchmarkRender(b *testing.B) {
	t := MustParse("{db}_{table}_{pk}")
	cols := []cdc.Column{cdc.ParseColumnType("id", "bigint(20)"), cdc.ParseColumnType("name", "varchar(64)")}
	in := Input{DB: "shop", Table: "orders", PK: []string{"id"}, Row: cdc.Row{"id": int64(123456), "name": "x"}, Columns: cols}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := t.Render(in); err != nil {
			b.Fatal(err)
		}
	}
}
