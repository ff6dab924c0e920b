package mysqlmeta

import (
	"slices"
	"testing"
	"time"
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
		down, err := OpenSchemas("root@tcp(127.0.0.1:1)/?timeout=1s")
		if err != nil {
			t.Fatal(err)
		}
		defer down.Close()
		down.Patience = 300 * time.Millisecond
		if def, err := down.Table(ctx, s, "t", false); err == nil || def != nil {
			t.Errorf("Table on a closed port = %v, %v; want an error after the retries", def, err)
		}
		// a Close ends a wait that would last an hour
		down.Patience = time.Hour
		done := make(chan error, 1)
		go func() {
			_, err := down.Table(ctx, s, "t", false)
			done <- err
		}()
		down.Close()
		select {
		case err := <-done:
			if err == nil {
				t.Error("Table after Close succeeded on a closed port")
			}
		case <-time.After(2 * time.Minute):
			t.Fatal("Close did not end the retries")
		}
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
