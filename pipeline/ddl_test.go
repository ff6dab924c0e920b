package pipeline

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/metrics"
)

func TestDDLReport(t *testing.T) {
	var logs bytes.Buffer
	m := metrics.New()
	r := &DDLReport{
		Match:   func(db, table string) bool { return db == "shop" && table == "orders" },
		MatchDB: func(db string) bool { return db == "shop" },
		Logger:  slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	r.Instrument(m)
	r.OnDDL(cdc.DDL{DB: "shop", Table: "orders", Type: "TRUNCATE"})
	r.OnDDL(cdc.DDL{DB: "shop", Table: "orders,other.orders", Type: "DROP", SQL: "DROP TABLE orders, other.orders"})
	r.OnDDL(cdc.DDL{DB: "shop", Table: "orders", Type: "ALTER", SQL: "ALTER TABLE orders ADD x INT"})
	r.OnDDL(cdc.DDL{DB: "shop", Table: "audit", Type: "TRUNCATE"})
	r.OnDDL(cdc.DDL{DB: "other", Type: "DROP", SQL: "DROP DATABASE other"})
	r.OnDDL(cdc.DDL{DB: "shop", Type: "DROP", SQL: "DROP DATABASE shop"})

	var warns, infos, debugs int
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		switch {
		case strings.Contains(line, "level=WARN") && strings.Contains(line, "table=shop.orders"):
			warns++
		case strings.Contains(line, "level=INFO") && strings.Contains(line, "type=ALTER"):
			infos++
		case strings.Contains(line, "level=WARN") && strings.Contains(line, "db=shop") && strings.Contains(line, "DROP DATABASE"):
			warns++
		case strings.Contains(line, "level=DEBUG") && (strings.Contains(line, "table=audit") || strings.Contains(line, "db=other")):
			debugs++
		default:
			t.Errorf("unexpected log line: %s", line)
		}
	}
	if warns != 3 || infos != 1 || debugs != 2 {
		t.Errorf("warn %d info %d debug %d; want 3 1 2:\n%s", warns, infos, debugs, logs.String())
	}
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var clears float64
	for _, mf := range mfs {
		if mf.GetName() == "rowsync_ddl_clears_total" {
			for _, mt := range mf.GetMetric() {
				clears += mt.GetCounter().GetValue()
			}
		}
	}
	if clears != 3 {
		t.Errorf("rowsync_ddl_clears_total = %v, want 3 (TRUNCATE and DROP of shop.orders, DROP DATABASE shop)", clears)
	}
}
