package mysqlstandin

import (
	"context"
	"database/sql"
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
