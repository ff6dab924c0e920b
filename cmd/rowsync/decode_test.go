package main

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/rowsync/rowsync/mysqlmeta"
)

// TestDecodeWithSchemaSource: `rowsync decode --mysql DSN` prints for a
// schemaless Debezium, a Maxwell and a jsonl message exactly the row the
// canal-json message of the same change prints.
func TestDecodeWithSchemaSource(t *testing.T) {
	dsn := mysqlmeta.DSN("127.0.0.1:3306", "", "")
	db, err := sql.Open("mysql", dsn.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := fmt.Sprintf("rowsync_decode_%d", rand.Uint64()%1e12)
	if _, err := db.Exec("CREATE DATABASE " + s); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Exec("DROP DATABASE IF EXISTS " + s) })
	if _, err := db.Exec("CREATE TABLE " + s + ".t (id INT PRIMARY KEY, amount DECIMAL(12,2), day DATE, " +
		"at DATETIME(3), dur TIME, data BLOB, flags BIT(10), doc JSON, state ENUM('new','paid'), tags SET('a','b','c'))"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(body, "$S", s)), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	canal := write("canal.json", `{"data":[{"id":"7","amount":"1234.50","day":"2024-02-29","at":"2024-01-02 03:04:05.678",`+
		`"dur":"-12:34:56","data":"\u0000\u0001\u0002ÿ","flags":"682","doc":"{\"k\": [1, 2]}","state":"paid","tags":"a,c"}],`+
		`"database":"$S","table":"t","type":"INSERT","isDdl":false,"es":1709528400000,"ts":1709528400001,"pkNames":["id"],`+
		`"mysqlType":{"id":"int(11)","amount":"decimal(12,2)","day":"date","at":"datetime(3)","dur":"time","data":"blob",`+
		`"flags":"bit(10)","doc":"json","state":"enum('new','paid')","tags":"set('a','b','c')"},"old":null}`)
	dbz := write("debezium.json", `{"before":null,"after":{"id":7,"amount":"AeI6","day":19782,"at":1704164645678,`+
		`"dur":-45296000000,"data":"AAEC/w==","flags":"qgI=","doc":"{\"k\":[1,2]}","state":"paid","tags":"a,c"},`+
		`"source":{"db":"$S","table":"t","file":"mysql-bin.000003","pos":4,"ts_ms":1709528400000},"op":"c","ts_ms":1709528400001}`)
	key := write("key.json", `{"id":7}`)
	mw := write("maxwell.json", `{"database":"$S","table":"t","type":"insert","ts":1709528400,"primary_key_columns":["id"],`+
		`"data":{"id":7,"amount":1234.50,"day":"2024-02-29","at":"2024-01-02 03:04:05.678","dur":"-12:34:56",`+
		`"data":"AAEC/w==","flags":682,"doc":{"k":[1,2]},"state":"paid","tags":["a","c"]}}`)
	jl := write("lines.jsonl", `{"binlog":"mysql-bin.000003:4","db":"$S","table":"t","eventType":"INSERT","before":"",`+
		`"after":{"id":"7","amount":"1234.50","day":"2024-02-29","at":"2024-01-02 03:04:05.678","dur":"-12:34:56",`+
		`"data":"\u0000\u0001\u0002ÿ","flags":"682","doc":"{\"k\": [1, 2]}","state":"paid","tags":"a,c"},"time":"2024-03-04 05:00:00"}`)

	run := func(args ...string) map[string]json.RawMessage {
		t.Helper()
		var out, errb bytes.Buffer
		if code := cmdDecode(args, nil, &out, &errb); code != exitOK {
			t.Fatalf("decode %v: exit %d: %s", args, code, errb.String())
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(out.Bytes(), &m); err != nil {
			t.Fatalf("decode %v printed %q: %v", args, out.String(), err)
		}
		delete(m, "ts") // commit time and position are the producer's own
		delete(m, "pos")
		return m
	}
	mysqlDSN := dsn.FormatDSN()
	want := run("--format", "canal-json", canal)
	for name, args := range map[string][]string{
		"debezium": {"--format", "debezium", "--mysql", mysqlDSN, "--key", key, dbz},
		"maxwell":  {"--format", "maxwell", "--mysql", mysqlDSN, mw},
		"jsonl":    {"--format", "jsonl", "--mysql", mysqlDSN, jl},
	} {
		t.Run(name, func(t *testing.T) {
			got := run(args...)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s printed\n%s\ncanal-json printed\n%s", name, render(got), render(want))
			}
		})
	}
	t.Run("time-zone", func(t *testing.T) {
		// canal printed the TIMESTAMP in its JVM's zone, +05:00
		msg := write("ts.json", `{"data":[{"id":"1","ts":"2024-03-04 10:00:00"}],"database":"$S","table":"z","type":"INSERT",`+
			`"isDdl":false,"es":1,"ts":1,"pkNames":["id"],"mysqlType":{"id":"int(11)","ts":"timestamp"},"old":null}`)
		got := run("--format", "canal-json", "--time-zone", "+05:00", msg)
		if !bytes.Contains(got["after"], []byte(`"ts":"2024-03-04 05:00:00"`)) {
			t.Errorf("after %s, want ts in UTC 05:00:00", got["after"])
		}
		var out, errb bytes.Buffer
		if code := cmdDecode([]string{"--format", "canal-json", "--time-zone", "Mars/Base", msg}, nil, &out, &errb); code != exitConfig ||
			!strings.Contains(errb.String(), "time_zone: unknown zone") {
			t.Errorf("bad zone: exit %d, %s", code, errb.String())
		}
	})
	t.Run("without --mysql debezium stays raw", func(t *testing.T) {
		got := run("--format", "debezium", "--key", key, dbz)
		if reflect.DeepEqual(got, want) || !bytes.Contains(got["after"], []byte(`"AeI6"`)) {
			t.Errorf("untyped debezium printed %s", render(got))
		}
	})
}

func render(m map[string]json.RawMessage) string {
	b, _ := json.Marshal(m)
	return string(b)
}
