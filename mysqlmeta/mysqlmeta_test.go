package mysqlmeta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/rowsync/rowsync/cdc"
)

// Servers of the test machine: plain MariaDB, and the project's MariaDB
// with its binlog on.
const (
	plainAddr  = "127.0.0.1:3306"
	binlogAddr = "127.0.0.1:3307"
)

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func open(t testing.TB, addr string) *sql.DB {
	t.Helper()
	dc := DSN(addr, "", "")
	dc.MultiStatements = true
	db, err := sql.Open("mysql", dc.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// newSchema creates a schema of its own for one test on the server at
// addr, runs ddl in it ($S names the schema), and drops it afterwards.
func newSchema(t testing.TB, db *sql.DB, ddl ...string) string {
	t.Helper()
	s := fmt.Sprintf("mysqlmeta_%d", rand.Uint64()%1e12)
	if _, err := db.Exec("CREATE DATABASE " + s + " CHARACTER SET utf8mb4"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := db.Exec("DROP DATABASE IF EXISTS " + s); err != nil {
			t.Errorf("drop %s: %v", s, err)
		}
	})
	for _, q := range ddl {
		if _, err := db.Exec(strings.ReplaceAll(q, "$S", s)); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return s
}

func TestDSNDefaults(t *testing.T) {
	for _, tc := range []struct {
		name, addr, user, pass string
		want                   string
	}{
		{"all defaults", "", "", "", "root@tcp(127.0.0.1:3306)/"},
		{"given", "db.example:3310", "cdc", "s3cret", "cdc:s3cret@tcp(db.example:3310)/"},
		{"user only", "", "cdc", "", "cdc@tcp(127.0.0.1:3306)/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := DSN(tc.addr, tc.user, tc.pass).FormatDSN(); got != tc.want {
				t.Errorf("DSN = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestTable(t *testing.T) {
	db := open(t, plainAddr)
	s := newSchema(t, db,
		"CREATE TABLE $S.composite (b VARCHAR(10) NOT NULL, a INT NOT NULL, amount DECIMAL(12,2), "+
			"flags BIT(10), n BIGINT UNSIGNED, PRIMARY KEY (a, b))",
		"CREATE TABLE $S.keyless (x INT, y TEXT)",
		"CREATE TABLE $S.unique_only (u INT NOT NULL, v TEXT, UNIQUE KEY (u))",
		"CREATE TABLE $S.docs (id INT PRIMARY KEY, doc JSON, hand LONGTEXT, plain LONGTEXT, "+
			"`we``ird` JSON, num INT, CONSTRAINT c_hand CHECK (json_valid(hand)), "+
			"CONSTRAINT c_num CHECK (json_valid(num)), CONSTRAINT c_mixed CHECK (json_valid(plain) AND plain <> ''))",
		"CREATE VIEW $S.v AS SELECT * FROM $S.keyless",
	)
	c := NewCatalog(db)
	ctx := ctxT(t)
	maria, err := c.MariaDB(ctx)
	if err != nil || !maria {
		t.Fatalf("MariaDB() = %v, %v; the test server is MariaDB", maria, err)
	}
	type col struct {
		name string
		kind cdc.Kind
	}
	for _, tc := range []struct {
		table string
		cols  []col
		pk    []string
	}{
		{"composite", []col{{"b", cdc.KindString}, {"a", cdc.KindInt}, {"amount", cdc.KindDecimal},
			{"flags", cdc.KindBit}, {"n", cdc.KindInt}}, []string{"a", "b"}},
		{"keyless", []col{{"x", cdc.KindInt}, {"y", cdc.KindString}}, nil},
		// a UNIQUE NOT NULL index is not a primary key: pk: in the config says the key
		{"unique_only", []col{{"u", cdc.KindInt}, {"v", cdc.KindString}}, nil},
		// MariaDB JSON: LONGTEXT with a json_valid CHECK, column- or table-level;
		// a json_valid check among other conditions, or on a non-text column, is not JSON
		{"docs", []col{{"id", cdc.KindInt}, {"doc", cdc.KindJSON}, {"hand", cdc.KindJSON},
			{"plain", cdc.KindString}, {"we`ird", cdc.KindJSON}, {"num", cdc.KindInt}}, []string{"id"}},
	} {
		t.Run(tc.table, func(t *testing.T) {
			tb, err := c.Table(ctx, s, tc.table)
			if err != nil {
				t.Fatal(err)
			}
			var got []col
			for _, c := range tb.Columns {
				got = append(got, col{c.Name, c.Kind})
			}
			if !slices.Equal(got, tc.cols) {
				t.Errorf("columns = %v, want %v", got, tc.cols)
			}
			if !slices.Equal(tb.PK, tc.pk) {
				t.Errorf("pk = %q, want %q", tb.PK, tc.pk)
			}
			for i, c := range tc.cols {
				if j, ok := tb.Index(c.name); !ok || j != i {
					t.Errorf("Index(%q) = %d, %v; want %d", c.name, j, ok, i)
				}
			}
			if _, ok := tb.Index("nope"); ok {
				t.Error(`Index("nope") found a column`)
			}
		})
	}
	t.Run("types", func(t *testing.T) {
		tb, err := c.Table(ctx, s, "composite")
		if err != nil {
			t.Fatal(err)
		}
		if a := tb.Columns[2]; a.Precision != 2 || a.Type != "decimal(12,2)" {
			t.Errorf("amount = %+v, want decimal(12,2), scale 2", a)
		}
		if n := tb.Columns[4]; !n.Unsigned || n.IntBytes != 8 {
			t.Errorf("n = %+v, want unsigned 8 bytes", n)
		}
	})
	t.Run("missing", func(t *testing.T) {
		if _, err := c.Table(ctx, s, "nope"); !errors.Is(err, ErrNoTable) {
			t.Errorf("err = %v, want ErrNoTable", err)
		}
	})
	t.Run("list", func(t *testing.T) {
		got, err := c.Tables(ctx, func(d, _ string) bool { return d == s || d == "mysql" })
		if err != nil {
			t.Fatal(err)
		}
		want := [][2]string{{s, "composite"}, {s, "docs"}, {s, "keyless"}, {s, "unique_only"}} // no view, no mysql.*
		if !slices.Equal(got, want) {
			t.Errorf("Tables = %v, want %v", got, want)
		}
	})
}

func TestJSONValidColumn(t *testing.T) {
	for _, tc := range []struct {
		clause, want string
		ok           bool
	}{
		{"json_valid(`doc`)", "doc", true},
		{"JSON_VALID(`doc`)", "doc", true},
		{"json_valid(doc)", "doc", true},
		{"json_valid(`we``ird`)", "we`ird", true},
		{" json_valid( `d` ) ", "d", true},
		{"json_valid(`a`) and x > 1", "", false},
		{"json_valid(`a`) and json_valid(`b`)", "", false},
		{"json_valid(`a` + `b`)", "", false},
		{"json_valid()", "", false},
		{"json_valid(", "", false},
		{"json_validity(`a`)", "", false},
		{"length(`a`) > 1", "", false},
	} {
		t.Run(tc.clause, func(t *testing.T) {
			got, ok := jsonValidColumn(tc.clause)
			if got != tc.want || ok != tc.ok {
				t.Errorf("jsonValidColumn = %q, %v; want %q, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestFilter(t *testing.T) {
	for _, tc := range []struct {
		name             string
		include, exclude []string
		take, skip       []string
	}{
		{"default", nil, nil, []string{"shop.users", "a.b"},
			[]string{"mysql.user", "SYS.x", "performance_schema.threads", "information_schema.TABLES"}},
		{"include", []string{`shop\..*`, "mysql.user"}, nil, []string{"shop.users", "mysql.user"},
			[]string{"shop2.users", "other.t", "xshop.users", "mysql.db"}},
		{"exclude", nil, []string{`shop\.cache_.*`}, []string{"shop.users", "shop.cachex"},
			[]string{"shop.cache_only", "mysql.user"}},
		{"include and exclude", []string{`shop\..*`}, []string{"shop.secret"}, []string{"shop.users"},
			[]string{"shop.secret", "crm.users"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := NewFilter(tc.include, tc.exclude)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range tc.take {
				d, tb, _ := strings.Cut(n, ".")
				if !f.Match(d, tb) {
					t.Errorf("%s not taken", n)
				}
			}
			for _, n := range tc.skip {
				d, tb, _ := strings.Cut(n, ".")
				if f.Match(d, tb) {
					t.Errorf("%s taken", n)
				}
			}
		})
	}
	t.Run("nil", func(t *testing.T) {
		var f *Filter
		if !f.Match("shop", "users") || f.Match("mysql", "user") {
			t.Error("a nil filter takes every table outside the system schemas")
		}
	})
	t.Run("bad patterns", func(t *testing.T) {
		_, err := NewFilter([]string{"ok", "("}, []string{"["})
		if err == nil || !strings.Contains(err.Error(), "include[1]: ") || !strings.Contains(err.Error(), "exclude[0]: ") {
			t.Errorf("err = %v, want include[1] and exclude[0] named", err)
		}
	})
}

func TestCheckBinlog(t *testing.T) {
	ctx := ctxT(t)
	t.Run("ready", func(t *testing.T) {
		if err := CheckBinlog(ctx, open(t, binlogAddr)); err != nil {
			t.Errorf("CheckBinlog(%s) = %v, want nil", binlogAddr, err)
		}
	})
	t.Run("no binlog", func(t *testing.T) {
		err := CheckBinlog(ctx, open(t, plainAddr))
		if err == nil || !strings.Contains(err.Error(), "log_bin=OFF (need ON") {
			t.Errorf("CheckBinlog(%s) = %v, want log_bin=OFF reported", plainAddr, err)
		}
	})
	t.Run("every problem", func(t *testing.T) {
		// binlog_format and binlog_row_image are also session variables:
		// a connection whose session differs must not confuse the check.
		db := open(t, binlogAddr)
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, "SET SESSION binlog_format = 'STATEMENT', SESSION binlog_row_image = 'MINIMAL'"); err != nil {
			t.Fatal(err)
		}
		if err := CheckBinlog(ctx, conn); err != nil {
			t.Errorf("session settings leaked into the global check: %v", err)
		}
	})
}
