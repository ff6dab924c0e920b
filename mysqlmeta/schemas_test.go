package mysqlmeta

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rowsync/rowsync/internal/tcpproxy"
	"github.com/rowsync/rowsync/metrics"
)

func TestSchemas(t *testing.T) {
	db := open(t, plainAddr)
	s := newSchema(t, db, "CREATE TABLE $S.t (id INT PRIMARY KEY, a VARCHAR(10))")
	ctx := ctxT(t)
	names := func(sc *Schemas, refresh bool) []string {
		t.Helper()
		def, err := sc.Table(ctx, s, "t", refresh)
		if err != nil {
			t.Fatal(err)
		}
		if def == nil {
			return nil
		}
		return def.Names()
	}
	alter := func(q string) {
		t.Helper()
		if _, err := db.Exec("ALTER TABLE " + s + ".t " + q); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("cached until refresh or forget", func(t *testing.T) {
		sc := NewSchemas(db)
		sc.MinRefresh = 0
		if got := names(sc, false); !slices.Equal(got, []string{"id", "a"}) {
			t.Fatalf("first read = %v", got)
		}
		alter("ADD COLUMN b INT")
		if got := names(sc, false); !slices.Equal(got, []string{"id", "a"}) {
			t.Errorf("cached read = %v, want the first definition", got)
		}
		if got := names(sc, true); !slices.Equal(got, []string{"id", "a", "b"}) {
			t.Errorf("refresh = %v, want b added", got)
		}
		alter("DROP COLUMN b")
		sc.Forget(s, "t")
		if got := names(sc, false); !slices.Equal(got, []string{"id", "a"}) {
			t.Errorf("after Forget = %v, want b gone", got)
		}
	})
	t.Run("refresh rate-limited", func(t *testing.T) {
		sc := NewSchemas(db)
		sc.MinRefresh = time.Hour
		names(sc, false)
		alter("ADD COLUMN c INT")
		defer alter("DROP COLUMN c")
		if got := names(sc, true); !slices.Equal(got, []string{"id", "a"}) {
			t.Errorf("refresh within MinRefresh = %v, want the cached definition", got)
		}
		sc.Forget(s, "t") // a DDL message is never rate-limited
		if got := names(sc, false); !slices.Equal(got, []string{"id", "a", "c"}) {
			t.Errorf("after Forget = %v, want c", got)
		}
	})
	t.Run("missing table", func(t *testing.T) {
		sc := NewSchemas(db)
		sc.MinRefresh = 0
		def, err := sc.Table(ctx, s, "later", false)
		if err != nil || def != nil {
			t.Fatalf("missing table = %v, %v; want nil, nil", def, err)
		}
		if _, err := db.Exec("CREATE TABLE " + s + ".later (k INT)"); err != nil {
			t.Fatal(err)
		}
		def, err = sc.Table(ctx, s, "later", false)
		if err != nil || def == nil || !slices.Equal(def.Names(), []string{"k"}) {
			t.Errorf("created table = %v, %v; want its definition", def, err)
		}
	})
	t.Run("database down", func(t *testing.T) {
		// a real outage: the schema source reaches MariaDB through a proxy
		// the test takes down and brings back
		px := tcpproxy.Start(t, plainAddr)
		sc, err := OpenSchemas(DSN(px.Addr(), "", "").FormatDSN())
		if err != nil {
			t.Fatal(err)
		}
		defer sc.Close()
		var logs bytes.Buffer
		sc.Log = slog.New(slog.NewTextHandler(&logs, nil))
		m := metrics.New()
		sc.Instrument(m)
		value := func(name string) float64 {
			t.Helper()
			mfs, err := m.Registry.Gather()
			if err != nil {
				t.Fatal(err)
			}
			for _, mf := range mfs {
				if mf.GetName() == name {
					if g := mf.GetMetric()[0].GetGauge(); g != nil {
						return g.GetValue()
					}
					return mf.GetMetric()[0].GetCounter().GetValue()
				}
			}
			t.Fatalf("no metric %s", name)
			return 0
		}
		gauge := func() float64 { return value("rowsync_schema_source_up") }
		if g := gauge(); g != 1 {
			t.Errorf("up before any read = %v, want 1", g)
		}
		px.Down()
		for range 3 {
			if def, err := sc.Table(ctx, s, "t", false); err == nil || def != nil {
				t.Fatalf("Table with the database down = %v, %v; want an error at once", def, err)
			}
		}
		if g := gauge(); g != 0 {
			t.Errorf("up during the outage = %v, want 0", g)
		}
		if n := value("rowsync_schema_source_failures_total"); n != 3 {
			t.Errorf("failures = %v, want 3", n)
		}
		if n := strings.Count(logs.String(), "schema source unavailable"); n != 1 {
			t.Errorf("outage logged %d times, want once:\n%s", n, logs.String())
		}
		px.Up()
		def, err := sc.Table(ctx, s, "t", false)
		if err != nil || def == nil || !slices.Equal(def.Names(), []string{"id", "a"}) {
			t.Fatalf("Table after the database is back = %v, %v", def, err)
		}
		if g := gauge(); g != 1 {
			t.Errorf("up after the outage = %v, want 1", g)
		}
		if n := strings.Count(logs.String(), "schema source answers again"); n != 1 {
			t.Errorf("recovery logged %d times, want once:\n%s", n, logs.String())
		}
		// a cached definition needs no database
		px.Down()
		if def, err := sc.Table(ctx, s, "t", false); err != nil || def == nil {
			t.Errorf("cached Table with the database down = %v, %v", def, err)
		}
		px.Up()
	})
	t.Run("open", func(t *testing.T) {
		sc, err := OpenSchemas(DSN(plainAddr, "", "").FormatDSN())
		if err != nil {
			t.Fatal(err)
		}
		defer sc.Close()
		def, err := sc.Table(ctx, s, "t", false)
		if err != nil || def == nil || !slices.Equal(def.PK, []string{"id"}) {
			t.Errorf("Table = %v, %v", def, err)
		}
		if _, err := OpenSchemas("not a dsn"); err == nil {
			t.Error("OpenSchemas accepted a bad DSN")
		}
	})
}
