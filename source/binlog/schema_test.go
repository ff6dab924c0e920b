package binlog

import (
	"fmt"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/rowsync/rowsync/cdc"
)

// TestAlterMidStream changes a table under a running source (ADD, DROP,
// MODIFY, re-ADD of a name with another type). A live source decodes each
// row with the schema of its time; a second source that reads the same
// binlog only after every ALTER (information_schema already shows the final
// table) must give exactly the same events.
func TestAlterMidStream(t *testing.T) {
	db, schema := testDB(t)
	mustExec(t, db, "CREATE TABLE al (id INT PRIMARY KEY, a INT, b DECIMAL(6,2))")
	start := currentFile(t)
	var startPos string
	if err := db.QueryRow("SHOW MASTER STATUS").Scan(new(string), &startPos, new(string), new(string)); err != nil {
		t.Fatal(err)
	}
	live := newSource(t, schema, nil, nil)
	steps := []struct {
		sql  []string
		want []*cdc.Row // After images
	}{
		{[]string{"INSERT INTO al VALUES (1, 10, 1.5)"},
			[]*cdc.Row{cdc.RowOf("id", int64(1), "a", int64(10), "b", cdc.Decimal("1.50"))}},
		{[]string{"ALTER TABLE al ADD COLUMN c VARCHAR(10) NOT NULL DEFAULT 'x'", "INSERT INTO al VALUES (2, 20, 2.5, 'y')"},
			[]*cdc.Row{cdc.RowOf("id", int64(2), "a", int64(20), "b", cdc.Decimal("2.50"), "c", "y")}},
		{[]string{"ALTER TABLE al DROP COLUMN b", "INSERT INTO al VALUES (3, 30, 'z')"},
			[]*cdc.Row{cdc.RowOf("id", int64(3), "a", int64(30), "c", "z")}},
		{[]string{"ALTER TABLE al MODIFY COLUMN a VARCHAR(20)", "INSERT INTO al VALUES (4, 'forty', 'w')"},
			[]*cdc.Row{cdc.RowOf("id", int64(4), "a", "forty", "c", "w")}},
		{[]string{"ALTER TABLE al ADD COLUMN b ENUM('p','q') AFTER id", "INSERT INTO al VALUES (5, 'q', 'fifty', 'v')",
			"UPDATE al SET c = 'u' WHERE id = 1"},
			[]*cdc.Row{cdc.RowOf("id", int64(5), "b", "q", "a", "fifty", "c", "v"), cdc.RowOf("id", int64(1), "b", nil, "a", "10", "c", "u")}},
	}
	var all []cdc.Event
	for i, st := range steps {
		for _, q := range st.sql {
			mustExec(t, db, q)
		}
		ev := collect(t, live, len(st.want))
		for j, e := range ev {
			diffRow(t, fmt.Sprintf("live step %d event %d", i, j), e.After, st.want[j])
			if !reflect.DeepEqual(e.PK, []string{"id"}) {
				t.Errorf("live step %d: pk %v", i, e.PK)
			}
		}
		all = append(all, ev...)
	}
	if all[5].Before.Get("c") != "x" || all[5].Before.Get("a") != "10" {
		t.Errorf("update before image %v", all[5].Before)
	}

	drain := newSource(t, schema, nil, func(c *Config) { c.Start = start + ":" + startPos })
	replay := collect(t, drain, len(all))
	for i := range all {
		diffRow(t, fmt.Sprintf("replay event %d after", i), replay[i].After, all[i].After)
		diffRow(t, fmt.Sprintf("replay event %d before", i), replay[i].Before, all[i].Before)
		if replay[i].Pos != all[i].Pos {
			t.Errorf("replay event %d pos %v, live %v", i, replay[i].Pos, all[i].Pos)
		}
	}
	// the replayed first row kept its historic types, not today's
	for _, c := range replay[0].Columns {
		if c.Name == "b" && c.Kind != cdc.KindDecimal {
			t.Errorf("historic column b: %+v", c)
		}
	}
}

// TestPlanWithoutNames covers servers that log no column names
// (binlog_row_metadata=MINIMAL): names come from the definition by
// position, and a count mismatch names the extra columns visibly.
func TestPlanWithoutNames(t *testing.T) {
	ti := cdc.NewTableDef([]cdc.Column{cdc.ParseColumnType("id", "int(11)"), cdc.ParseColumnType("price", "decimal(8,3)")},
		[]string{"id"})
	tm := &replication.TableMapEvent{Schema: []byte("d"), Table: []byte("t"), ColumnCount: 2,
		ColumnType: []byte{mysql.MYSQL_TYPE_LONG, mysql.MYSQL_TYPE_NEWDECIMAL}, ColumnMeta: []uint16{0, 8<<8 | 3}}
	log := slog.New(slog.DiscardHandler)
	p := buildPlan(tm, ti, 0, log)
	row, _, err := p.image(nil, []any{int32(7), "12.5"}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !row.Equal(cdc.RowOf("id", int64(7), "price", cdc.Decimal("12.500"))) || !reflect.DeepEqual(p.pk, []string{"id"}) {
		t.Fatalf("row %v pk %v", row, p.pk)
	}
	tm3 := &replication.TableMapEvent{Schema: []byte("d"), Table: []byte("t"), ColumnCount: 3,
		ColumnType: []byte{mysql.MYSQL_TYPE_LONG, mysql.MYSQL_TYPE_NEWDECIMAL, mysql.MYSQL_TYPE_VARCHAR}, ColumnMeta: []uint16{0, 8<<8 | 3, 40}}
	p3 := buildPlan(tm3, ti, 0, log)
	row, _, err = p3.image(nil, []any{int32(7), "12.5", "extra"}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if row.Get("@3") != "extra" || row.Len() != 3 {
		t.Fatalf("extra column: %v", row)
	}
	if !p.matches(tm, 0) || p.matches(tm3, 0) || p.matches(tm, 1) {
		t.Fatal("plan cache key")
	}
}

func TestConvert(t *testing.T) {
	col := func(name, typ string) *cdc.Column { c := cdc.ParseColumnType(name, typ); return &c }
	tests := []struct {
		name string
		col  *cdc.Column
		in   any
		want any
		err  bool
	}{
		{"tinyint unsigned", col("x", "tinyint unsigned"), int8(-1), int64(255), false},
		{"smallint unsigned", col("x", "smallint unsigned"), int16(-1), int64(65535), false},
		{"mediumint unsigned", col("x", "mediumint(8) unsigned"), int32(-1), int64(16777215), false},
		{"bigint unsigned max", col("x", "bigint(20) unsigned"), int64(-1), uint64(1<<64 - 1), false},
		{"bit 64", col("x", "bit(64)"), int64(-1), uint64(1<<64 - 1), false},
		{"tinyint unsigned typed", col("x", "tinyint unsigned"), uint8(255), int64(255), false},
		{"smallint unsigned typed", col("x", "smallint unsigned"), uint16(65535), int64(65535), false},
		{"mediumint unsigned typed", col("x", "mediumint unsigned"), uint32(16777215), int64(16777215), false},
		{"int unsigned typed", col("x", "int unsigned"), uint32(4294967295), int64(4294967295), false},
		{"bigint unsigned typed max", col("x", "bigint unsigned"), uint64(1<<64 - 1), uint64(1<<64 - 1), false},
		{"bigint unsigned typed small", col("x", "bigint unsigned"), uint64(7), int64(7), false},
		{"unsigned typed, definition says signed", col("x", "int"), uint32(4294967295), int64(4294967295), false},
		{"unsigned typed decimal", col("x", "decimal(20,0)"), uint64(1<<64 - 1), cdc.Decimal("18446744073709551615"), false},
		{"unsigned typed year", col("x", "year"), uint8(99), int64(99), false},
		{"unsigned typed string too big", col("x", "varchar(5)"), uint64(1<<64 - 1), nil, true},
		{"enum index", col("x", "enum('a','b')"), int64(2), "b", false},
		{"enum zero", col("x", "enum('a','b')"), int64(0), "", false},
		{"enum out of range", col("x", "enum('a','b')"), int64(3), nil, true},
		{"set bits", col("x", "set('a','b','c')"), int64(5), cdc.Set{"a", "c"}, false},
		{"set beyond", col("x", "set('a')"), int64(2), nil, true},
		{"decimal", col("x", "decimal(10,4)"), "-0.5", cdc.Decimal("-0.5000"), false},
		{"time", col("x", "time(1)"), "-01:02:03.5", -(time.Hour + 2*time.Minute + 3500*time.Millisecond), false},
		{"date", col("x", "date"), "2024-02-00", "2024-02-00", false},
		{"binary pad", col("x", "binary(3)"), "\x01", []byte{1, 0, 0}, false},
		{"json bytes", col("x", "json"), []byte(`{"k":1}`), cdc.JSON(`{"k":1}`), false},
		{"text bytes", col("x", "text"), []byte("ü"), "ü", false},
		{"float", col("x", "float"), float32(0.1), float64(float32(0.1)), false},
		{"year", col("x", "year"), int(1999), int64(1999), false},
		{"unsupported", col("x", "int"), struct{}{}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := convert(tt.col, tt.in, cdc.BinaryWidth(tt.col.Type))
			if (err != nil) != tt.err {
				t.Fatalf("err %v", err)
			}
			if !tt.err && !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v (%T), want %#v (%T)", got, got, tt.want, tt.want)
			}
		})
	}
}

func TestIsDDL(t *testing.T) {
	for q, want := range map[string]bool{"ALTER TABLE x ADD c INT": true, "/* app */ create table y (a int)": true,
		"drop table z": true, "RENAME TABLE a TO b": true, "BEGIN": false, "INSERT INTO t VALUES (1)": false, "alterx": false} {
		if got := isDDL(stripComments([]byte(q))); got != want {
			t.Errorf("%q: %v", q, got)
		}
	}
}
