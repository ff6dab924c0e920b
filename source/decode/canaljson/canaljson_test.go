package canaljson

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/internal/sourcetest"
	"github.com/rowsync/rowsync/source/decode"
	"github.com/rowsync/rowsync/source/decode/internal/canal"
	"github.com/rowsync/rowsync/source/decode/internal/golden"
)

const profileTypes = `"mysqlType":{"id":"bigint(20) unsigned","nickname":"varchar(64)","balance":"decimal(12,2)","score":"double","is_vip":"tinyint(1)","birthday":"date","created_at":"datetime(3)","updated_at":"timestamp","avatar":"blob","bio":"text","status":"enum('active','banned')"},` +
	`"sqlType":{"id":-5,"nickname":12,"balance":3,"score":8,"is_vip":-6,"birthday":91,"created_at":93,"updated_at":93,"avatar":2004,"bio":2005,"status":4}`

func profileRow(id, nick, score, bio, status string) string {
	return fmt.Sprintf(`{"id":"%s","nickname":%s,"balance":"1234.50","score":"%s","is_vip":"1","birthday":"1990-01-31","created_at":"2024-05-01 10:20:30.000","updated_at":"2024-05-01 10:20:30","avatar":"\u0000\u00ff\u0089PNG","bio":%s,"status":"%s"}`,
		id, nick, score, bio, status)
}

// The shared scenario of the format corpus, built with canal's
// MQMessageUtils.messageConverter rules (fastjson: sorted top-level keys).
var scenario = map[string]string{
	"insert-2rows": `{"data":[` + profileRow("1001", `"张三🚀"`, "1.0E10", "null", "1") + `,` + profileRow("1002", `"quote \" back \\ slash \n"`, "0.0", `"hi"`, "2") +
		`],"database":"shop","es":1714558830000,"gtid":"","id":5,"isDdl":false,` + profileTypes + `,"old":null,"pkNames":["id"],"sql":"","table":"user_profile","ts":1714558830123,"type":"INSERT"}`,
	"update-null-to-value": `{"data":[` + profileRow("1001", `"new"`, "98.6", `"now set"`, "1") +
		`],"database":"shop","es":1714558831000,"gtid":"","id":6,"isDdl":false,` + profileTypes + `,"old":[{"nickname":"张三🚀","score":"1.0E10","bio":null}],"pkNames":["id"],"sql":"","table":"user_profile","ts":1714558831123,"type":"UPDATE"}`,
	"delete": `{"data":[` + profileRow("1002", `"x"`, "0.0", "null", "2") +
		`],"database":"shop","es":1714558832000,"gtid":"","id":7,"isDdl":false,` + profileTypes + `,"old":null,"pkNames":["id"],"sql":"","table":"user_profile","ts":1714558832123,"type":"DELETE"}`,
	"ddl-alter": `{"data":null,"database":"shop","es":1714558835000,"gtid":"","id":8,"isDdl":true,"mysqlType":null,"old":null,"pkNames":null,"sql":"ALTER TABLE user_profile ADD COLUMN tags json","sqlType":null,"table":"user_profile","ts":1714558835123,"type":"ALTER"}`,
	// row 2's old repeats "score" (changed in row 1 only): canal keeps the
	// updated-column set for the whole entry
	"update-2rows-quirk": `{"data":[` + profileRow("1001", `"new"`, "99.5", "null", "1") + `,` + profileRow("1003", `"c"`, "3.0", "null", "1") +
		`],"database":"shop","es":1714558840000,"gtid":"","id":9,"isDdl":false,` + profileTypes + `,"old":[{"score":"98.6"},{"score":"3.0","status":"2"}],"pkNames":["id"],"sql":"","table":"user_profile","ts":1714558840123,"type":"UPDATE"}`,
}

func mustDecode(t *testing.T, d decode.Decoder, s string) []cdc.Event {
	t.Helper()
	evs, err := d.Decode(decode.Message{Value: []byte(s), Topic: "orders", Partition: 2, Offset: 1811})
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return evs
}

func TestScenario(t *testing.T) {
	var ddls []decode.DDL
	d, _ := New(decode.Options{TimeZone: time.FixedZone("CST", 8*3600), OnDDL: func(x decode.DDL) { ddls = append(ddls, x) }})

	evs := mustDecode(t, d, scenario["insert-2rows"])
	if len(evs) != 2 {
		t.Fatalf("insert: %d events", len(evs))
	}
	e := evs[0]
	if e.Op != cdc.Insert || e.Before != nil || e.Pos.Text != "orders/2@1811" || e.Pos.Version != 0 || !e.Commit.Equal(time.UnixMilli(1714558830000)) {
		t.Fatalf("event: %+v", e)
	}
	a := e.After
	checks := map[string]cdc.Value{"id": int64(1001), "nickname": "张三🚀", "balance": cdc.Decimal("1234.50"), "score": 1e10,
		"is_vip": int64(1), "bio": nil, "status": "active"}
	for k, w := range checks {
		if a.Get(k) != w {
			t.Errorf("%s = %#v, want %#v", k, a.Get(k), w)
		}
	}
	if !bytes.Equal(a.Get("avatar").([]byte), []byte{0, 0xff, 0x89, 'P', 'N', 'G'}) {
		t.Errorf("avatar % x", a.Get("avatar"))
	}
	if ts := a.Get("updated_at").(time.Time); !ts.Equal(time.Date(2024, 5, 1, 2, 20, 30, 0, time.UTC)) {
		t.Errorf("timestamp read in the canal zone: %v", ts)
	}
	if dt := a.Get("created_at").(time.Time); !dt.Equal(time.Date(2024, 5, 1, 10, 20, 30, 0, time.UTC)) {
		t.Errorf("datetime not shifted: %v", dt)
	}
	if evs[1].After.Get("nickname") != "quote \" back \\ slash \n" || evs[1].After.Get("status") != "banned" {
		t.Errorf("row 2: %v", evs[1].After)
	}

	evs = mustDecode(t, d, scenario["update-null-to-value"])
	if len(evs) != 1 || evs[0].Before.Get("bio") != nil || evs[0].After.Get("bio") != "now set" || evs[0].Before.Get("nickname") != "张三🚀" ||
		evs[0].Before.Get("score") != 1e10 || evs[0].Before.Get("balance") != cdc.Decimal("1234.50") {
		t.Fatalf("update: %+v", evs)
	}

	evs = mustDecode(t, d, scenario["delete"])
	if len(evs) != 1 || evs[0].Op != cdc.Delete || evs[0].After != nil || evs[0].Before.Get("id") != int64(1002) {
		t.Fatalf("delete: %+v", evs)
	}

	if evs = mustDecode(t, d, scenario["ddl-alter"]); len(evs) != 0 || len(ddls) != 1 || ddls[0].Type != "ALTER" {
		t.Fatalf("ddl: %v %v", evs, ddls)
	}

	evs = mustDecode(t, d, scenario["update-2rows-quirk"])
	if len(evs) != 2 {
		t.Fatalf("update 2 rows: %d", len(evs))
	}
	if evs[1].Before.Get("score") != evs[1].After.Get("score") || evs[1].Before.Get("status") != "banned" || evs[1].After.Get("status") != "active" {
		t.Errorf("quirk row: before %v after %v", evs[1].Before, evs[1].After)
	}
	if evs[0].Before.Get("score") != 98.6 || evs[0].After.Get("score") != 99.5 {
		t.Errorf("row 1: %v", evs[0].Before.Get("score"))
	}
}

func TestQuirks(t *testing.T) {
	d, _ := New(decode.Options{KeyColumns: func(db, table string) []string {
		if table == "nopk" {
			return []string{"k"}
		}
		return nil
	}})
	t.Run("seconds es and full old (CKafka)", func(t *testing.T) {
		evs := mustDecode(t, d, `{"type":"update","database":"d","table":"t","es":1714558830,"pkNames":["id"],"mysqlType":{"id":"int","v":"varchar(3)"},"data":[{"id":"1","v":"b"}],"old":[{"id":"1","v":"a"}]}`)
		if len(evs) != 1 || !evs[0].Commit.Equal(time.Unix(1714558830, 0)) || evs[0].Before.Get("v") != "a" || evs[0].After.Get("v") != "b" || evs[0].Op != cdc.Update {
			t.Fatalf("%+v", evs)
		}
	})
	t.Run("update without old", func(t *testing.T) {
		evs := mustDecode(t, d, `{"type":"UPDATE","database":"d","table":"t","pkNames":["id"],"mysqlType":{"id":"int"},"data":[{"id":"1"}],"old":null}`)
		if len(evs) != 1 || evs[0].Before != nil || evs[0].After.Get("id") != int64(1) {
			t.Fatalf("%+v", evs)
		}
	})
	t.Run("pkNames null uses KeyColumns", func(t *testing.T) {
		evs := mustDecode(t, d, `{"type":"INSERT","database":"d","table":"nopk","pkNames":null,"mysqlType":{"k":"int"},"data":[{"k":"7"}]}`)
		if len(evs) != 1 || strings.Join(evs[0].PK, ",") != "k" {
			t.Fatalf("%+v", evs)
		}
		evs = mustDecode(t, d, `{"type":"INSERT","database":"d","table":"other","data":[{"k":"7"}]}`)
		if len(evs) != 1 || len(evs[0].PK) != 0 || evs[0].After.Get("k") != "7" {
			t.Fatalf("%+v", evs)
		}
	})
	t.Run("typed values without mysqlType (Flink writer)", func(t *testing.T) {
		evs := mustDecode(t, d, `{"old":null,"data":[{"id":101,"big":18446744073709551615,"w":3.14,"ok":true,"doc":{"a":[1]},"s":"x"}],"type":"INSERT","database":"inv","table":"p","pkNames":["id"],"ts":1}`)
		a := evs[0].After
		if a.Get("id") != int64(101) || a.Get("big") != uint64(18446744073709551615) || a.Get("w") != 3.14 || a.Get("ok") != int64(1) || a.Get("doc") != cdc.JSON(`{"a":[1]}`) || a.Get("s") != "x" {
			t.Fatalf("%#v", a)
		}
	})
	t.Run("sqlType only", func(t *testing.T) {
		evs := mustDecode(t, d, `{"type":"INSERT","database":"d","table":"t","pkNames":["id"],"sqlType":{"id":-5,"b":2004},"data":[{"id":"9","b":"\u00ff"}]}`)
		if evs[0].After.Get("id") != int64(9) || !bytes.Equal(evs[0].After.Get("b").([]byte), []byte{0xff}) {
			t.Fatalf("%#v", evs[0].After)
		}
	})
	t.Run("no-row messages", func(t *testing.T) {
		for _, s := range []string{
			`{"data":null,"database":"","isDdl":false,"sql":"insert into t values(1)","table":"t","type":"QUERY"}`,
			`{"data":null,"database":"d","isDdl":false,"table":"t","type":"INSERT"}`,
			`{"data":[],"database":"d","isDdl":false,"table":"t","type":"DELETE"}`,
			`{"data":null,"type":"XACOMMIT"}`,
			`{"data":null,"database":"d","isDdl":true,"sql":"drop table t","table":"t","type":"ERASE"}`,
			`{"type":"TIDB_WATERMARK","database":"","table":""}`,
		} {
			if evs := mustDecode(t, d, s); len(evs) != 0 {
				t.Errorf("%s: %d events", s, len(evs))
			}
		}
	})
	t.Run("whitespace and key order", func(t *testing.T) {
		evs := mustDecode(t, d, " {\n \"pkNames\" : [ \"id\" ] , \"data\" : [ { \"id\" : \"1\" } ] ,\"type\":\"delete\", \"mysqlType\":{\"id\":\"INTEGER\"},\"database\":\"d\",\"table\":\"t\"}\n")
		if len(evs) != 1 || evs[0].Op != cdc.Delete || evs[0].Before.Get("id") != int64(1) {
			t.Fatalf("%+v", evs)
		}
	})
}

func TestErrors(t *testing.T) {
	d, _ := New(decode.Options{})
	row := `"database":"d","table":"t","pkNames":["id"],"mysqlType":{"id":"int","n":"int","e":"enum('a')"}`
	cases := map[string]struct{ in, want string }{
		"not json":       {`hello`, "not a JSON object"},
		"truncated":      {`{"data":[{"id":"1"}`, "unexpected end"},
		"trailing":       {`{"type":"QUERY"} x`, "data after"},
		"array":          {`[1]`, "not a JSON object"},
		"unknown type":   {`{"type":"UPSERT","data":[{"id":"1"}]}`, `unknown event type "UPSERT"`},
		"missing type":   {`{"data":[{"id":"1"}]}`, `"type": missing`},
		"bad isDdl":      {`{"isDdl":"yes"}`, `field "isDdl"`},
		"bad data":       {`{"data":{"id":"1"}}`, `field "data"`},
		"pk missing":     {`{"type":"INSERT",` + row + `,"data":[{"id":"1","n":"2"},{"n":"3"}]}`, `data[1]: primary key column "id" missing or NULL`},
		"pk null":        {`{"type":"DELETE",` + row + `,"data":[{"id":null}]}`, `data[0]: primary key column "id"`},
		"bad int":        {`{"type":"INSERT",` + row + `,"data":[{"id":"1"},{"id":"2","n":"zz"}]}`, `data[1].n: `},
		"bad old":        {`{"type":"UPDATE",` + row + `,"data":[{"id":"1"}],"old":[{"n":"1.5"}]}`, `old[0].n: `},
		"enum range":     {`{"type":"INSERT",` + row + `,"data":[{"id":"1","e":"4"}]}`, `data[0].e: `},
		"null row":       {`{"type":"INSERT",` + row + `,"data":[null]}`, `data[0]: null row`},
		"object for int": {`{"type":"INSERT",` + row + `,"data":[{"id":{}}]}`, `data[0].id: object`},
		"bad mysqlType":  {`{"type":"INSERT","mysqlType":{"id":5},"data":[{"id":"1"}]}`, `field "mysqlType"`},
		"bad escape":     {`{"type":"I\x"}`, "bad escape"},
		"control char":   {"{\"type\":\"a\x01\"}", "control character"},
		"bad number":     {`{"es":01}`, `field "es"`},
		"deep nesting":   {`{"x":` + strings.Repeat("[", 1000) + strings.Repeat("]", 1000) + `}`, "too deep"},
		// 164 bytes that once ended rowsync with "out of memory", again after every restart
		"decimal scale": {`{"type":"INSERT","database":"d","table":"t","pkNames":["id"],"mysqlType":{"id":"int","p":"decimal(10,30000000000)"},"data":[{"id":"1","p":"1.5"}]}`,
			`data[0].p: column p: decimal scale 30000000000 exceeds MySQL's maximum of 30`},
		"decimal precision": {`{"type":"INSERT",` + row + `,"mysqlType":{"id":"int","p":"decimal(100,2)"},"data":[{"id":"1","p":"1.5"}]}`, "precision 100 exceeds"},
		"decimal digits":    {`{"type":"INSERT","mysqlType":{"id":"int","p":"decimal(65,2)"},"data":[{"id":"1","p":"1e300"}]}`, "more than MySQL's maximum of 65"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := d.Decode(decode.Message{Value: []byte(c.in)})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want containing %q", err, c.want)
			}
		})
	}
}

// TestScannerMatchesEncodingJSON checks the hand-written scanner against
// encoding/json on the string escapes it must undo.
func TestScannerMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{`"plain"`, `"a\"b\\c\/d\b\f\n\r\t"`, `"\u00e9\u4e2d\ud83d\ude80"`, `"\ud83d"`, `"\ude80x"`, `"\ud83d\u0041"`, `"é中🚀"`, `""`} {
		var want string
		if err := json.Unmarshal([]byte(s), &want); err != nil {
			t.Fatal(err)
		}
		sc := &scanner{b: []byte(s)}
		got, err := sc.str()
		if err != nil || string(got) != want {
			t.Errorf("%s: got %q (%v), want %q", s, got, err, want)
		}
	}
}

func TestConcurrent(t *testing.T) {
	d, _ := New(decode.Options{})
	done := make(chan error)
	for g := range 4 {
		go func() {
			var err error
			for i := range 200 {
				var evs []cdc.Event
				evs, err = d.Decode(decode.Message{Value: []byte(scenario["insert-2rows"]), Offset: int64(g*1000 + i)})
				if err == nil && (len(evs) != 2 || evs[1].After.Get("id") != int64(1002)) {
					err = fmt.Errorf("bad events %v", evs)
				}
				if err != nil {
					break
				}
			}
			done <- err
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, b := range golden.Samples(f, "testdata/*.json*") {
		for _, line := range bytes.Split(b, []byte("\n")) {
			f.Add(line)
		}
	}
	for _, s := range scenario {
		f.Add([]byte(s))
	}
	for _, m := range golden.HostileSeeds(f) {
		f.Add(m.Value)
	}
	d, _ := New(decode.Options{})
	d = decode.Bounded(d, decode.Options{}) // as run uses it
	f.Fuzz(func(t *testing.T, b []byte) {
		evs, err := d.Decode(decode.Message{Value: b})
		if err != nil {
			return
		}
		if !json.Valid(b) {
			t.Fatalf("accepted invalid JSON %q", b)
		}
		for _, ev := range evs {
			if _, err := decode.EventJSON(ev); err != nil {
				t.Fatalf("EventJSON: %v", err)
			}
		}
	})
}

// TestRowCapStopsTheParse: a 13 MB message of 900,000 tiny rows is
// rejected at the row cap, without building the rows first (it once took
// 830 MB).
func TestRowCapStopsTheParse(t *testing.T) {
	msg := decode.Message{Value: tinyRows(900000)}
	d, _ := New(decode.Options{})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := d.Decode(msg)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), `field "data": more than 10000 rows in one message (max_rows)`) {
		t.Fatalf("err %v", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 32<<20 {
		t.Fatalf("allocated %d MiB to reject it", alloc>>20)
	}
	d, _ = New(decode.Options{Limits: decode.Limits{MaxRows: 3}})
	if evs, err := d.Decode(decode.Message{Value: tinyRows(3)}); err != nil || len(evs) != 3 {
		t.Fatalf("3 rows with max_rows 3: %d events, %v", len(evs), err)
	}
	if _, err := d.Decode(decode.Message{Value: tinyRows(4)}); err == nil || !strings.Contains(err.Error(), "more than 3 rows") {
		t.Fatalf("4 rows with max_rows 3: %v", err)
	}
}

// parseAfter parses b with a message that parsed a first (so it remembers
// a's schema texts), and b with a fresh one; both results are returned.
func parseAfter(a, b []byte) (after, fresh *message, errAfter, errFresh error) {
	after, fresh = new(message), new(message)
	after.reset()
	_ = after.parse(a, decode.Limits{})
	after.drop() // as Decode's release does
	after.reset()
	errAfter = after.parse(b, decode.Limits{})
	fresh.reset()
	errFresh = fresh.parse(b, decode.Limits{})
	return after, fresh, errAfter, errFresh
}

func sameParse(t *testing.T, a, b []byte) {
	t.Helper()
	after, fresh, errAfter, errFresh := parseAfter(a, b)
	if fmt.Sprint(errAfter) != fmt.Sprint(errFresh) {
		t.Fatalf("after %q, %q: error %v, alone %v", a, b, errAfter, errFresh)
	}
	if errFresh != nil {
		return
	}
	for _, f := range [][2][]byte{{after.pkNames, fresh.pkNames}, {after.mysqlType, fresh.mysqlType}, {after.sqlType, fresh.sqlType},
		{after.database, fresh.database}, {after.table, fresh.table}, {after.typ, fresh.typ}} {
		if !bytes.Equal(f[0], f[1]) || (f[0] == nil) != (f[1] == nil) {
			t.Fatalf("after %q, %q: field %q, alone %q", a, b, f[0], f[1])
		}
	}
	if len(after.fields) != len(fresh.fields) || len(after.data) != len(fresh.data) || len(after.old) != len(fresh.old) {
		t.Fatalf("after %q, %q: rows differ", a, b)
	}
}

// TestSeenSchemaText: a message parsed after another (whose schema texts
// it remembers and need not scan again) parses exactly as it does alone,
// whether its texts repeat, differ, or only start the same.
func TestSeenSchemaText(t *testing.T) {
	base := `{"type":"INSERT","database":"d","table":"t","pkNames":["id"],"mysqlType":{"id":"int","n":"varchar(8)"},"sqlType":{"id":4,"n":12},"data":[{"id":"1","n":"x"}]}`
	cases := []string{
		base,
		strings.Replace(base, `"varchar(8)"`, `"varchar(9)"`, 1),
		strings.Replace(base, `["id"]`, `["id"]]`, 1),                   // the same text, then junk
		strings.Replace(base, `{"id":4,"n":12}`, `{"id":4,"n":12}}`, 1), // the same text, then junk
		strings.Replace(base, `["id"]`, `["id"],"pkNames":null`, 1),     // repeated key
		strings.Replace(base, `"mysqlType":{"id":"int"`, `"mysqlType": {"id":"int"`, 1),
		strings.Replace(base, `"sqlType":{"id":4,"n":12}`, `"sqlType":null`, 1),
		strings.Replace(base, `"pkNames":["id"]`, `"pkNames":"id"`, 1),
		strings.Replace(base, `{"id":"int","n":"varchar(8)"}`, `{"id":"int","n":"varchar(8)"`, 1), // truncated
		`{"type":"INSERT","pkNames":["id"`,
		`{"type":"INSERT","pkNames":["id"]`,
		strings.Replace(base, `"pkNames":["id"],`, ``, 1),
	}
	for _, a := range cases {
		for _, b := range cases {
			sameParse(t, []byte(a), []byte(b))
		}
	}
}

// FuzzSeenSchemaText: whatever came before, a message parses as it does
// alone.
func FuzzSeenSchemaText(f *testing.F) {
	for _, s := range scenario {
		f.Add([]byte(s), []byte(scenario["delete"]))
	}
	f.Add([]byte(`{"pkNames":["id"]}`), []byte(`{"pkNames":["id"]]}`))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		sameParse(t, a, b)
	})
}

// TestSpecial: the lowest byte special flags is the first '"', '\\' or
// control character of the word, and no flag means there is none.
func TestSpecial(t *testing.T) {
	isSpecial := func(c byte) bool { return c == '"' || c == '\\' || c < 0x20 }
	rng := rand.New(rand.NewPCG(1, 2))
	check := func(w [8]byte) {
		first := -1
		for i, c := range w {
			if isSpecial(c) {
				first = i
				break
			}
		}
		m := special(binary.LittleEndian.Uint64(w[:]))
		got := -1
		if m != 0 {
			got = bits.TrailingZeros64(m) / 8
		}
		if got != first {
			t.Fatalf("% x: special says byte %d, want %d", w, got, first)
		}
	}
	for c := range 256 {
		for pos := range 8 {
			for range 64 {
				var w [8]byte
				for i := range w {
					w[i] = byte(rng.IntN(256))
				}
				w[pos] = byte(c)
				check(w)
			}
		}
	}
}

// TestStrEveryOffset: strings with an escape, a quote or a control
// character at every offset around the 8-byte steps scan as encoding/json
// reads them (or are refused where it refuses them).
func TestStrEveryOffset(t *testing.T) {
	for n := range 20 {
		for at := range n + 1 {
			for _, ins := range []string{`\"`, `\\`, `\n`, `\u00e9`, "\x01", "é", `"`} {
				body := strings.Repeat("a", at) + ins + strings.Repeat("b", n-at)
				in := `"` + body + `"`
				var want string
				wantErr := json.Unmarshal([]byte(in), &want)
				sc := &scanner{b: []byte(in)}
				got, err := sc.str()
				switch {
				case (err != nil) != (wantErr != nil) && !(ins == `"` && sc.i < len(in)):
					t.Fatalf("%q: err %v, encoding/json %v", in, err, wantErr)
				case err == nil && ins != `"` && string(got) != want:
					t.Fatalf("%q: got %q, want %q", in, got, want)
				case err == nil && ins == `"` && string(got) != strings.Repeat("a", at):
					t.Fatalf("%q: got %q, want the text before the first quote", in, got)
				}
			}
		}
	}
}

// TestLastTable: a decoder that remembers the last message's schema and
// names decodes each message of a sequence that switches databases,
// tables, schemas and decoders exactly as a new decoder does.
func TestLastTable(t *testing.T) {
	msg := func(db, table, typ string) string {
		return `{"type":"INSERT","database":"` + db + `","table":"` + table + `","pkNames":["id"],"mysqlType":{"id":"` + typ +
			`","n":"varchar(8)"},"sqlType":{"id":4,"n":12},"data":[{"id":"7","n":"x"}]}`
	}
	seq := []string{msg("a", "t", "int"), msg("a", "t", "int"), msg("a", "u", "int"), msg("b", "u", "int"), msg("b", "u", "varchar(4)"),
		msg("", "u", "varchar(4)"), msg("", "", "varchar(4)"), msg("a", "t", "int"), msg("a", "t", "bad(")[:40], msg("a", "t", "decimal(99,2)"),
		`{"type":"INSERT","database":"a","table":"t","mysqlType":{"id":5},"data":[{"id":"1"}]}`, msg("a", "t", "int"),
		// one table's schema texts changing and back (the remembered texts
		// replaced): each message is typed by its own
		msg("a", "t", "varchar(4)"), msg("a", "t", "int"), strings.Replace(msg("a", "t", "int"), `"id":4`, `"id":12`, 1),
		msg("a", "t", "int"), strings.Replace(msg("a", "t", "int"), `["id"]`, `["n"]`, 1), msg("a", "t", "int")}
	d1, _ := New(decode.Options{})
	d2, _ := New(decode.Options{KeyColumns: func(db, table string) []string { return nil }})
	type result struct {
		evs []cdc.Event
		err error
	}
	seq = append(seq, seq...)
	got := make([]result, len(seq))
	for i, s := range seq { // nothing else decodes meanwhile
		d := d1
		if i%5 == 4 {
			d = d2
		}
		got[i].evs, got[i].err = d.Decode(decode.Message{Value: []byte(s), Topic: "t", Offset: int64(i)})
	}
	for i, s := range seq {
		fresh, _ := New(decode.Options{})
		want, wantErr := fresh.Decode(decode.Message{Value: []byte(s), Topic: "t", Offset: int64(i)})
		if fmt.Sprint(got[i].err) != fmt.Sprint(wantErr) || !sourcetest.SameEvents(got[i].evs, want) {
			t.Fatalf("message %d %s:\n%+v (%v)\nnew decoder:\n%+v (%v)", i, s, got[i].evs, got[i].err, want, wantErr)
		}
	}
}

// TestValuesOutliveTheirMessage: the values of a message's events (boxed
// in blocks its pooled state shares with the messages after it, see
// cdc.Arena) are still what a new decoder gives after many more messages
// and garbage collections.
func TestValuesOutliveTheirMessage(t *testing.T) {
	names := []string{"insert-2rows", "update-null-to-value", "delete", "update-2rows-quirk"}
	d, _ := New(decode.Options{TimeZone: time.FixedZone("CST", 8*3600)})
	var kept [][]cdc.Event
	var msgs []string
	for i := range 300 {
		s := scenario[names[i%len(names)]]
		if i%7 == 3 {
			s = string(benchMessageOp(1+i%4, "UPDATE"))
		}
		if i%50 == 49 { // a message whose text is too big to share blocks with the others
			s = strings.Replace(s, `"gift wrap, deliver after 6pm"`, `"`+strings.Repeat("w", 40<<10)+`"`, 1)
		}
		msgs = append(msgs, s)
		kept = append(kept, mustDecode(t, d, s))
		if i%64 == 0 {
			runtime.GC()
		}
	}
	runtime.GC()
	for i, s := range msgs {
		fresh, _ := New(decode.Options{TimeZone: time.FixedZone("CST", 8*3600)})
		if want := mustDecode(t, fresh, s); !sourcetest.SameEvents(kept[i], want) {
			t.Fatalf("message %d changed after later decodes:\n%+v\nwant\n%+v", i, kept[i], want)
		}
	}
}

// TestEscapedText decodes messages whose names and string values have
// escapes (their unescaped text is kept in the pooled message's scratch
// between parse and conversion), many enough that the scratch grows while
// a message is read: every value and name is what encoding/json reads,
// and still is after later messages reused the scratch.
func TestEscapedText(t *testing.T) {
	d, _ := New(decode.Options{})
	type kept struct {
		evs  []cdc.Event
		want []map[string]string
	}
	var all []kept
	for n := range 40 {
		var data, old []string
		var want []map[string]string
		for i := range 1 + n%5 {
			v := fmt.Sprintf(`v\"%d\u00e9\n%s`, n*10+i, strings.Repeat(`\\`, n))
			data = append(data, fmt.Sprintf(`{"k":"%d","n\u0061me":"%s","o":"x%d"}`, n*10+i, v, i))
			old = append(old, fmt.Sprintf(`{"n\u0061me":"old\t%d"}`, i))
			var w map[string]string
			if err := json.Unmarshal([]byte(fmt.Sprintf(`{"name":"%s","old":"old\t%d"}`, v, i)), &w); err != nil {
				t.Fatal(err)
			}
			want = append(want, w)
		}
		msg := `{"data":[` + strings.Join(data, ",") + `],"old":[` + strings.Join(old, ",") +
			`],"database":"sh\u006fp","table":"t","type":"UPDATE","pkNames":["k"],` +
			`"mysqlType":{"k":"int","name":"varchar(255)","o":"varchar(8)"}}`
		all = append(all, kept{mustDecode(t, d, msg), want})
	}
	for n, k := range all {
		if len(k.evs) != len(k.want) {
			t.Fatalf("message %d: %d events, want %d", n, len(k.evs), len(k.want))
		}
		for i, ev := range k.evs {
			if ev.DB != "shop" || ev.After.Get("name") != k.want[i]["name"] || ev.Before.Get("name") != k.want[i]["old"] ||
				ev.Before.Get("o") != fmt.Sprintf("x%d", i) {
				t.Fatalf("message %d event %d: %+v, want %v", n, i, ev, k.want[i])
			}
		}
	}
}

// TestValuesOwnTheirText decodes a row of many kinds, some on the paths
// that convert the commonest kinds in place, from a buffer that is then
// overwritten (as a source reuses its buffers): every value is what
// canal.Value gives for its text, before and after.
func TestValuesOwnTheirText(t *testing.T) {
	cols := [][3]string{ // name, MySQL type, text
		{"id", "bigint(20)", "123456789012345678"}, {"neg", "int(11)", "-42"}, {"big", "bigint(20) unsigned", "18446744073709551615"},
		{"y", "year(4)", "2024"}, {"b", "bit(8)", "5"}, {"plus", "int(11)", "+7"}, {"s", "varchar(32)", "héllo"},
		{"d", "date", "2024-05-01"}, {"dt", "datetime(3)", "2024-05-01 10:20:30.123"}, {"zero", "datetime", "0000-00-00 00:00:00"},
		{"part", "date", "2024-02-00"}, {"ts", "timestamp", "2024-05-01 10:21:00"}, {"zts", "timestamp", "0000-00-00 00:00:00"},
		{"dec", "decimal(12,2)", "1299.5"}, {"dbl", "double", "0.15"}, {"e", "enum('a','b')", "2"}, {"set", "set('x','y')", "3"},
		{"j", "json", `{"k":1}`}, {"bin", "varbinary(8)", "ab\u00ff"}, {"tm", "time", "10:20:30"}, {"txt", "text", "t"},
	}
	loc := time.FixedZone("CST", 8*3600)
	var data, types []string
	for _, c := range cols {
		v, _ := json.Marshal(c[2])
		data = append(data, fmt.Sprintf(`"%s":%s`, c[0], v))
		types = append(types, fmt.Sprintf(`"%s":"%s"`, c[0], c[1]))
	}
	msg := `{"data":[{` + strings.Join(data, ",") + `}],"database":"d","table":"t","type":"INSERT","pkNames":["id"],` +
		`"mysqlType":{` + strings.Join(types, ",") + `}}`
	d, _ := New(decode.Options{TimeZone: loc})
	for round := range 2 {
		buf := []byte(msg)
		evs, err := d.Decode(decode.Message{Value: buf})
		if err != nil || len(evs) != 1 {
			t.Fatal(evs, err)
		}
		check := func(when string) {
			for _, c := range cols {
				col := cdc.ParseColumnType(c[0], c[1])
				want, err := canal.Value(&col, canal.NoSQLType, c[2], loc)
				if err != nil {
					t.Fatal(err)
				}
				if got := evs[0].After.Get(c[0]); !reflect.DeepEqual(got, want) {
					t.Errorf("round %d %s: %s = %#v, want %#v", round, when, c[0], got, want)
				}
			}
		}
		check("decoded")
		for i := range buf {
			buf[i] = 'x'
		}
		check("after the buffer was overwritten")
	}
}

// TestMemberErrors: an error in a message whose members are read as the
// last message's names (see message.members) names the member as one read
// by scanning does: the member whose value was read last.
func TestMemberErrors(t *testing.T) {
	d, _ := New(decode.Options{})
	good := `{"data":[{"id":"1"}],"database":"d","table":"t","type":"INSERT","es":1,"pkNames":["id"],"mysqlType":{"id":"int"}}`
	cases := []struct{ in, want string }{
		{`{"data":[{"id":"1"}],"database":"d","table":"t","type":"INSERT","es":"x","pkNames":["id"],"mysqlType":{"id":"int"}}`,
			`canal-json: field "es": "x" is not a timestamp`},
		{`{"data":[{"id":"1"}],"database":"d","table":7,"type":"INSERT","es":1,"pkNames":["id"],"mysqlType":{"id":"int"}}`,
			`canal-json: field "table": not a string`},
		{`{"data":[{"id":"1"}],"database":"d","table":"t",7:"INSERT","es":1,"pkNames":["id"],"mysqlType":{"id":"int"}}`,
			`canal-json: field "table": offset 48: expected string, found '7'`},
		{`{"data":[{"id":"1"}],"database":"d","table":"t","type" "INSERT"}`,
			`canal-json: field "table": offset 55: expected ':', found '"'`},
		{`{"data":[{"id":"1"}],"database":"d","table":"t","type":"INSERT","es":1,"pkNames":["id"],"mysqlType":{"id":"int"}`,
			`canal-json: field "mysqlType": unexpected end of JSON`},
		{`{"d\u0061ta":[{"id":"1"}],"database":"d","table":"t","type":"INSERT","es":1,"pkNames":["id"],"mysqlType":{"id":"int"}}x`,
			`canal-json: offset 118: data after the JSON object`},
		{`{"d\u0061ta":[{"id":"1"}],"database":"d","table":"t","type":"INSERT","es":1,"pkNames":["id"],"mysqlType":{"id":"int"},}`,
			`canal-json: field "mysqlType": offset 118: expected string, found '}'`},
		{`{"d\u0061ta":{}}`, `canal-json: field "data": offset 13: expected '[', found '{'`},
	}
	for _, c := range cases {
		for range 2 {
			if _, err := d.Decode(decode.Message{Value: []byte(good)}); err != nil {
				t.Fatal(err)
			}
			if _, err := d.Decode(decode.Message{Value: []byte(c.in)}); fmt.Sprint(err) != c.want {
				t.Errorf("%s:\n got %v\nwant %s", c.in, err, c.want)
			}
		}
	}
}

// TestMemberToken: scanner.member takes a token exactly where the input
// holds its text, for names of every length up to 20, each byte of the
// input changed in turn, and the input cut short.
func TestMemberToken(t *testing.T) {
	for n := range 21 {
		name := strings.Repeat("abcdefghij", 3)[:n]
		tok := newToken(name)
		in := []byte(`xy` + tok.text + `"1"}`)
		for cut := 2; cut <= len(in); cut++ {
			for k := 2; k < cut; k++ {
				b := slices.Clone(in[:cut])
				if k < 2+len(tok.text) {
					b[k] = '?'
				}
				s := &scanner{b: b, i: 2}
				want := cut >= 2+len(tok.text) && string(b[2:2+len(tok.text)]) == tok.text
				if got := s.member(&tok); got != want || (got && s.i != 2+len(tok.text)) || (!got && s.i != 2) {
					t.Fatalf("name %q, input %q: %v at %d, want %v", name, b, got, s.i, want)
				}
			}
		}
	}
}
