package mysqlstandin

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/rowsync/rowsync/mysqlmeta"
)

// The stand-in answers the catalog queries as MySQL 8.4 would, to a
// client authenticating with caching_sha2_password over plain TCP.
func TestCatalogAnswers(t *testing.T) {
	s, err := Start(Config{User: "u", Password: "pw", Tables: []Table{
		{DB: "noria", Name: "t", Columns: [][2]string{{"t", "time"}}},
		{DB: "d", Name: "k", Columns: [][2]string{{"id", "int"}, {"j", "json"}}, PK: []string{"id"}},
	}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cfg := mysqlmeta.DSN(s.Addr(), "u", "pw")
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	ctx := context.Background()
	cat := mysqlmeta.NewCatalog(db)
	for _, tt := range []struct{ db, table, want string }{{"noria", "t", "t"}, {"d", "k", "id,j"}} {
		def, err := cat.Table(ctx, tt.db, tt.table)
		if err != nil {
			t.Fatalf("%s.%s: %v", tt.db, tt.table, err)
		}
		got := ""
		for i, n := range def.Names() {
			if i > 0 {
				got += ","
			}
			got += n
		}
		if got != tt.want {
			t.Fatalf("%s.%s: columns %s", tt.db, tt.table, got)
		}
	}
	if err := mysqlmeta.CheckBinlog(ctx, db); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "SHOW MASTER STATUS"); err == nil {
		t.Fatal("SHOW MASTER STATUS answered; 8.4 refuses it")
	}
}

// The binlog preflight against a MySQL 8.4 that reports each setting:
// what passes, and what names the variable, its value and the fix.
func TestBinlogPreflight(t *testing.T) {
	tests := []struct {
		name    string
		vars    map[string]string
		partial bool   // every mapped table refetched
		want    string // "" means ready
	}{
		{"ready", nil, false, ""},
		{"partial json with full images", map[string]string{"binlog_row_value_options": "PARTIAL_JSON"}, false, ""},
		{"statement format", map[string]string{"binlog_format": "MIXED"}, false, "binlog_format=MIXED (need ROW"},
		{"minimal image", map[string]string{"binlog_row_image": "MINIMAL"}, false, "binlog_row_image=MINIMAL (need FULL"},
		{"minimal image, all refetched", map[string]string{"binlog_row_image": "MINIMAL"}, true, ""},
		{"noblob and partial json, all refetched", map[string]string{"binlog_row_image": "NOBLOB",
			"binlog_row_value_options": "PARTIAL_JSON"}, true, ""},
		{"minimal image and partial json", map[string]string{"binlog_row_image": "MINIMAL",
			"binlog_row_value_options": "PARTIAL_JSON"}, false, "binlog_row_value_options=PARTIAL_JSON (need ''"},
		{"no binlog", map[string]string{"log_bin": "OFF"}, true, "log_bin=OFF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Start(Config{User: "u", Password: "pw", Vars: tt.vars}, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			conn, err := mysql.NewConnector(mysqlmeta.DSN(s.Addr(), "u", "pw"))
			if err != nil {
				t.Fatal(err)
			}
			db := sql.OpenDB(conn)
			defer db.Close()
			err = mysqlmeta.CheckBinlogFor(context.Background(), db, mysqlmeta.BinlogNeeds{PartialImages: tt.partial})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("not ready: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want it to say %q", err, tt.want)
			}
		})
	}
}
