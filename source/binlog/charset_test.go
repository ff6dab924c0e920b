package binlog

import (
	"testing"

	"github.com/rowsync/rowsync/cdc"
)

// TestCharsets: text columns in character sets other than UTF-8 come out
// of the binlog as UTF-8, equal to what the server returns over a utf8mb4
// connection (what refetch, snapshot and the JSON formats deliver), on
// both decoders (with a JSON column the table goes through go-mysql's).
func TestCharsets(t *testing.T) {
	for _, withJSON := range []bool{false, true} {
		name := "own"
		if withJSON {
			name = "go-mysql"
		}
		t.Run(name, func(t *testing.T) {
			db, schema := testDB(t)
			extra := ""
			if withJSON {
				extra = ", j JSON"
			}
			mustExec(t, db, `CREATE TABLE t (id INT PRIMARY KEY,
				l1 VARCHAR(40) CHARACTER SET latin1, c1 CHAR(10) CHARACTER SET latin1, t1 TEXT CHARACTER SET latin1,
				ru VARCHAR(40) CHARACTER SET cp1251, gb VARCHAR(40) CHARACTER SET gbk, sj VARCHAR(40) CHARACTER SET sjis,
				u16 VARCHAR(40) CHARACTER SET utf16, u2 VARCHAR(40) CHARACTER SET ucs2, a7 VARCHAR(40) CHARACTER SET ascii,
				u8 VARCHAR(40) CHARACTER SET utf8mb4`+extra+`)`)
			s := newSource(t, schema, nil, nil)
			text := map[string]string{
				"l1": "çé € naïve ÿ", "c1": "Größe", "t1": "café crème brûlée",
				"ru": "Привет, мир", "gb": "你好，世界", "sj": "こんにちは世界",
				"u16": "héllo 世界 🎉", "u2": "ünï 世界", "a7": "plain ascii", "u8": "emoji 😀",
			}
			cols := []string{"l1", "c1", "t1", "ru", "gb", "sj", "u16", "u2", "a7", "u8"}
			args := []any{1}
			q := "INSERT INTO t (id"
			for _, c := range cols {
				q += ", " + c
				args = append(args, text[c])
			}
			q += ") VALUES (?" + repeat(", ?", len(cols)) + ")"
			mustExec(t, db, q, args...)
			mustExec(t, db, "UPDATE t SET l1 = 'Ärger' WHERE id = 1")
			mustExec(t, db, "INSERT INTO t (id, l1) VALUES (2, 'ascii only')")

			// what the server itself returns over utf8mb4
			server := map[string]string{}
			row := db.QueryRow("SELECT l1, c1, t1, ru, gb, sj, u16, u2, a7, u8 FROM t WHERE id = 1")
			vals := make([]string, len(cols))
			dest := make([]any, len(cols))
			for i := range vals {
				dest[i] = &vals[i]
			}
			if err := row.Scan(dest...); err != nil {
				t.Fatal(err)
			}
			for i, c := range cols {
				server[c] = vals[i]
			}
			if server["l1"] != "Ärger" {
				t.Fatalf("server l1 = %q", server["l1"])
			}

			ev := collect(t, s, 3)
			ins, upd, ins2 := ev[0].After, ev[1].After, ev[2].After
			for _, c := range cols {
				if ins.Get(c) != text[c] {
					t.Errorf("insert %s = %q, want %q", c, ins.Get(c), text[c])
				}
				if upd.Get(c) != server[c] {
					t.Errorf("update %s = %q, the server returns %q", c, upd.Get(c), server[c])
				}
			}
			if ev[1].Before.Get("l1") != text["l1"] || ins2.Get("l1") != "ascii only" {
				t.Errorf("before %q, ascii row %q", ev[1].Before.Get("l1"), ins2.Get("l1"))
			}
			var latin *cdc.Column
			for i := range ev[0].Columns {
				if ev[0].Columns[i].Name == "l1" {
					latin = &ev[0].Columns[i]
				}
			}
			if latin == nil || latin.Charset != "latin1" {
				t.Errorf("l1 column %+v: want Charset latin1", latin)
			}
		})
	}
}

func repeat(s string, n int) string {
	out := ""
	for range n {
		out += s
	}
	return out
}

func TestToUTF8(t *testing.T) {
	for _, tc := range []struct{ cs, in, want string }{
		{"latin1", "\xe7\xe9 \x80", "çé €"},
		{"latin1", "\x81", "\u0081"}, // unassigned in cp1252: MySQL maps it to the C1 control
		{"latin1", "plain", "plain"},
		{"cp1251", "\xcf\xf0\xe8", "При"},
		{"utf16", "\x00h\x00i", "hi"},
		{"utf16le", "h\x00i\x00", "hi"},
		{"armscii8", "\xb0", "\xb0"}, // no decoder: passed on (the plan warns)
	} {
		got, err := toUTF8(tc.cs, tc.in)
		if err != nil || got != tc.want {
			t.Errorf("toUTF8(%s, %q) = %q, %v; want %q", tc.cs, tc.in, got, err, tc.want)
		}
	}
}
