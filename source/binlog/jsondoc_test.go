package binlog

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/rowsync/rowsync/cdc"
)

func TestMySQLJSONText(t *testing.T) {
	tests := []struct{ in, want string }{
		// go-mysql's compact text, member order of the binary format
		{`{"age":24,"data":"x","name":"Joe"}`, `{"age": 24, "data": "x", "name": "Joe"}`},
		// nested, in the binary format's member order (by length, then bytes)
		{`{"a":2,"c":[1,2,{"y":true,"zz":null}],"bb":1}`, `{"a": 2, "c": [1, 2, {"y": true, "zz": null}], "bb": 1}`},
		{`{"k":"a,b: c"}`, `{"k": "a,b: c"}`}, {`["\"x,",1e-07]`, `["\"x,", 1e-7]`},
		{`[]`, `[]`}, {`{}`, `{}`}, {`"x\"y\\z\n"`, `"x\"y\\z\n"`}, {`null`, `null`},
		{``, `null`}, // an empty document reads back as null
		// doubles: Go's text -> MySQL's (my_gcvt, ".0" on whole numbers)
		{`1.5e-05`, `1.5e-5`}, {`1e+20`, `1e20`}, {`100000000000000000000.0`, `1e20`},
		{`1.2345675e+06`, `1234567.5`}, {`0.0001`, `0.0001`}, {`1e-05`, `1e-5`},
		{`1000000000000000.0`, `1e15`}, {`100000000000000.0`, `100000000000000.0`},
		{`-2.5`, `-2.5`}, {`3.0`, `3.0`}, {`1.7976931348623157e+308`, `1.7976931348623157e308`},
		// DECIMAL scalars keep their scale; integers stay integers
		{`9.00`, `9.00`}, {`123.456`, `123.456`}, {`18446744073709551615`, `18446744073709551615`}, {`-7`, `-7`},
		// non-ASCII passes through
		{`{"k":"ü€"}`, `{"k": "ü€"}`},
	}
	for _, tt := range tests {
		got, err := mysqlJSON(tt.in)
		if err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		if got != cdc.JSON(tt.want) {
			t.Errorf("%s: got %s, want %s", tt.in, got, tt.want)
		}
	}
	for _, bad := range []string{`"x`, `{"a":"b`, `[1e]`, `--1`} {
		if _, err := mysqlJSON(bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
	// the tree that partial updates are applied to sorts members itself
	// and rejects what is not JSON
	n, err := parseJSONDoc(`{"bb":1,"a":2}`)
	if err != nil || n.text() != `{"a": 2, "bb": 1}` {
		t.Fatalf("tree: %v %v", n, err)
	}
	for _, bad := range []string{`{`, `{"a"}`, `[1,]`, `tru`, `1 2`, `{"a":1,}`, `"x`} {
		if _, err := parseJSONDoc(bad); err == nil {
			t.Errorf("tree %s: no error", bad)
		}
	}
}

func TestMySQLDouble(t *testing.T) {
	tests := []struct {
		f    float64
		want string
	}{{0, "0.0"}, {math.Copysign(0, -1), "-0.0"}, {1, "1.0"}, {0.1, "0.1"}, {1.0 / 3, "0.3333333333333333"},
		{1e15, "1e15"}, {1e14, "100000000000000.0"}, {123456789012345.6, "123456789012345.6"},
		{1.5e-5, "1.5e-5"}, {2.5e-4, "0.00025"}, {-1e-300, "-1e-300"}, {math.NaN(), "null"}}
	for _, tt := range tests {
		if got := mysqlDouble(tt.f); got != tt.want {
			t.Errorf("%v: got %s, want %s", tt.f, got, tt.want)
		}
	}
}

func TestApplyJSONDiff(t *testing.T) {
	const doc = `{"a": [1, 2, 3], "b": {"c": "x", "dd": null}, "k y": 1}`
	r, ins, rm := replication.JsonDiffOperationReplace, replication.JsonDiffOperationInsert, replication.JsonDiffOperationRemove
	tests := []struct {
		name string
		op   replication.JsonDiffOperation
		path string
		val  string
		want string
		err  bool
	}{
		{"replace member", r, "$.b.c", `"y"`, `{"a": [1, 2, 3], "b": {"c": "y", "dd": null}, "k y": 1}`, false},
		{"replace element", r, "$.a[1]", `{"z":1.5e-05}`, `{"a": [1, {"z": 1.5e-5}, 3], "b": {"c": "x", "dd": null}, "k y": 1}`, false},
		{"replace quoted member", r, `$."k y"`, `2`, `{"a": [1, 2, 3], "b": {"c": "x", "dd": null}, "k y": 2}`, false},
		{"replace whole", r, "$", `[true]`, `[true]`, false},
		{"insert member sorted", ins, "$.b.e", `1`, `{"a": [1, 2, 3], "b": {"c": "x", "e": 1, "dd": null}, "k y": 1}`, false},
		{"insert element", ins, "$.a[0]", `0`, `{"a": [0, 1, 2, 3], "b": {"c": "x", "dd": null}, "k y": 1}`, false},
		{"append element", ins, "$.a[9]", `4`, `{"a": [1, 2, 3, 4], "b": {"c": "x", "dd": null}, "k y": 1}`, false},
		{"remove member", rm, "$.b.dd", ``, `{"a": [1, 2, 3], "b": {"c": "x"}, "k y": 1}`, false},
		{"remove element", rm, "$.a[2]", ``, `{"a": [1, 2], "b": {"c": "x", "dd": null}, "k y": 1}`, false},
		{"replace missing member", r, "$.b.zz", `1`, "", true},
		{"insert existing member", ins, "$.b.c", `1`, "", true},
		{"remove beyond", rm, "$.a[5]", ``, "", true},
		{"path into scalar", r, "$.k.x", `1`, "", true},
		{"wildcard", r, "$.*", `1`, "", true},
		{"no dollar", r, "a", `1`, "", true},
		{"bad value", r, "$.a", `{`, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := parseJSONDoc(doc)
			if err != nil {
				t.Fatal(err)
			}
			n, err = applyJSONDiff(n, &replication.JsonDiff{Op: tt.op, Path: tt.path, Value: tt.val})
			if (err != nil) != tt.err {
				t.Fatalf("err %v", err)
			}
			if err == nil && n.text() != tt.want {
				t.Fatalf("got  %s\nwant %s", n.text(), tt.want)
			}
		})
	}
}

func TestCountDiffs(t *testing.T) {
	// two operations: replace $.a with the binary JSON int16 1, remove $.b
	vec := []byte{0, 3, '$', '.', 'a', 3, 5, 1, 0, 2, 3, '$', '.', 'b'}
	if n, err := countDiffs(vec); err != nil || n != 2 {
		t.Fatalf("got %d, %v", n, err)
	}
	for _, bad := range [][]byte{{7}, {0, 9, '$'}, {0, 1, '$', 4, 1}} {
		if _, err := countDiffs(bad); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}

func TestStatementTarget(t *testing.T) {
	tests := []struct {
		q, db, table string
		ok           bool
	}{
		{"INSERT INTO t (a) VALUES (1)", "", "t", true},
		{"insert ignore into `d`.`t`(a) values (1)", "d", "t", true},
		{"REPLACE d.t SET a=1", "d", "t", true},
		{"UPDATE LOW_PRIORITY `my``t` SET a=1", "", "my`t", true},
		{"DELETE FROM d.t WHERE a=1", "d", "t", true},
		{"DELETE t1 FROM t1 JOIN t2", "", "", false},
		{"UPDATE t1, t2 SET t1.a=1", "", "", false},
		{"UPDATE t1 JOIN t2 ON 1 SET t1.a=1", "", "", false},
		{"LOAD DATA INFILE 'x' INTO TABLE t", "", "", false},
	}
	for _, tt := range tests {
		db, table, ok := statementTarget(tt.q)
		if db != tt.db || table != tt.table || ok != tt.ok {
			t.Errorf("%s: got %q %q %v", tt.q, db, table, ok)
		}
	}
}

// BenchmarkMySQLJSON prints go-mysql's text of a typical document in
// MySQL's form; the baseline in the same run is the plain string copy the
// value needed before (cdc.JSON(s)). It reports ns per document of both.
func BenchmarkMySQLJSON(b *testing.B) {
	doc := `{"id":12345,"tags":["a","bb","ccc"],"price":1.2345675e+06,"owner":{"name":"Joe","age":24,"x":null},"ok":true,"note":"free text here"}`
	var n int
	start := time.Now()
	for b.Loop() {
		j, err := mysqlJSON(doc)
		if err != nil {
			b.Fatal(err)
		}
		n += len(j)
	}
	per := float64(time.Since(start).Nanoseconds()) / float64(b.N)
	start = time.Now()
	for range b.N {
		n += len(cdc.JSON(strings.Clone(doc)))
	}
	base := float64(time.Since(start).Nanoseconds()) / float64(b.N)
	b.ReportMetric(per, "ns/doc")
	b.ReportMetric(base, "copy_ns/doc")
	if n == 0 {
		b.Fatal("no output")
	}
}
