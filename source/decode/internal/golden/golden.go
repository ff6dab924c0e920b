// Package golden is the golden-file test machinery the decoder packages
// share. Each decoder keeps, under its testdata, samples copied from the
// shared format corpus and for each one a NAME.expected.json that says what
// the sample means (the events, by value) and a NAME.golden that holds the
// decode.EventJSON rendering of the decoded events; go test -update
// rewrites the .golden files.
//
// It is imported by tests only.
package golden

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/source/decode"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// File is a NAME.expected.json. V is how the file writes a column value:
// any for formats whose values are JSON (decoded with UseNumber), *string
// for formats that carry MySQL text (nil is NULL).
type File[V any] struct {
	Sample string     `json:"sample"`
	Events []Event[V] `json:"events"`
}

// Event is one expected row event, or a DDL note when Op is "ddl".
type Event[V any] struct {
	SourceLine int          `json:"source_line"`
	DB         string       `json:"db"`
	Table      string       `json:"table"`
	Op         string       `json:"op"`
	PKColumns  []string     `json:"pk_columns"`
	PK         map[string]V `json:"pk"`
	Before     map[string]V `json:"before"`
	After      map[string]V `json:"after"`
	DDL        *struct {
		Type string `json:"type"`
		SQL  string `json:"sql"`
	} `json:"ddl"`
	EventTSMs *int64         `json:"event_ts_ms"`
	Position  map[string]any `json:"position"`
	// Binary holds the base64 of binary columns whose text the value
	// cannot carry exactly.
	Binary *struct {
		Before map[string]string `json:"before"`
		After  map[string]string `json:"after"`
	} `json:"binary_columns_base64"`
}

// Suite is what Run needs to know about one format.
type Suite[V any] struct {
	// New builds the decoder under test.
	New func(decode.Options) (decode.Decoder, error)
	// Options are the decoder options; Run sets OnDDL. Their KeyColumns
	// give the expected key of an event whose file names no pk_columns.
	Options decode.Options
	// FileKey and OffsetKey name the binlog file and offset in an expected
	// position; the event and DDL versions must equal
	// cdc.BinlogPosVersion of them (0 when absent). Empty FileKey: versions
	// are not checked.
	FileKey, OffsetKey string
	// Same compares a decoded value with the expected one by meaning and
	// says how they differ, "" when they agree. b64 is the expected base64
	// of a binary column when the file gives one.
	Same func(col *cdc.Column, v cdc.Value, want V, b64 string) string
}

// Run decodes every sample of testdata, one subtest per .expected.json,
// and checks the events and DDL notes against it and the EventJSON
// rendering against the .golden file.
func Run[V any](t *testing.T, s Suite[V]) {
	t.Helper()
	files, _ := filepath.Glob("testdata/*.expected.json")
	if len(files) == 0 {
		t.Fatal("no samples")
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".expected.json")
		t.Run(name, func(t *testing.T) { s.run(t, f, name) })
	}
}

func (s *Suite[V]) run(t *testing.T, f, name string) {
	raw, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	var exp File[V]
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&exp); err != nil {
		t.Fatal(err)
	}
	if exp.Sample == "" || exp.Events == nil {
		t.Skip("not an event sample")
	}
	sample, err := os.ReadFile(filepath.Join("testdata", exp.Sample))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var ddls []decode.DDL
	opts := s.Options
	opts.OnDDL = func(d decode.DDL) { mu.Lock(); ddls = append(ddls, d); mu.Unlock() }
	dec, err := s.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	dec = decode.Bounded(dec, opts) // every real sample passes the boundary
	type got struct {
		line int
		ev   cdc.Event
	}
	var all []got
	for i, line := range Messages(sample) {
		evs, err := dec.Decode(decode.Message{Value: line, Topic: "t", Offset: int64(i)})
		if err != nil {
			t.Fatalf("message %d: %v", i+1, err)
		}
		for _, ev := range evs {
			all = append(all, got{i + 1, ev})
		}
	}
	var wantRows, wantDDL []Event[V]
	for _, e := range exp.Events {
		if e.Op == "ddl" {
			wantDDL = append(wantDDL, e)
		} else {
			wantRows = append(wantRows, e)
		}
	}
	if len(all) != len(wantRows) {
		t.Fatalf("got %d events, want %d", len(all), len(wantRows))
	}
	if len(ddls) != len(wantDDL) {
		t.Fatalf("got %d DDL notes, want %d", len(ddls), len(wantDDL))
	}
	for i, w := range wantDDL {
		g := ddls[i]
		if g.SQL != w.DDL.SQL || g.Type != w.DDL.Type || g.DB != w.DB || g.Table != w.Table {
			t.Errorf("ddl %d: got %+v, want %+v", i, g, w)
		}
		if w.EventTSMs != nil && g.Commit.UnixMilli() != *w.EventTSMs {
			t.Errorf("ddl %d: commit %v, want %d ms", i, g.Commit, *w.EventTSMs)
		}
		if v, ok := s.version(w.Position); ok && g.Pos.Version != v {
			t.Errorf("ddl %d: version %x, want %x", i, g.Pos.Version, v)
		}
	}
	var golden bytes.Buffer
	for i, w := range wantRows {
		g := all[i]
		if w.SourceLine != 0 && w.SourceLine != g.line {
			t.Errorf("event %d: from line %d, want %d", i, g.line, w.SourceLine)
		}
		s.checkEvent(t, strconv.Itoa(i), &g.ev, w)
		line, err := decode.EventJSON(g.ev)
		if err != nil {
			t.Fatalf("event %d: EventJSON: %v", i, err)
		}
		if !json.Valid(line) {
			t.Fatalf("event %d: EventJSON invalid: %s", i, line)
		}
		golden.Write(line)
		golden.WriteByte('\n')
	}
	Check(t, filepath.Join("testdata", name+".golden"), golden.Bytes())
}

// version is the Position.Version the expected position implies, and
// whether versions are checked at all.
func (s *Suite[V]) version(pos map[string]any) (uint64, bool) {
	if s.FileKey == "" {
		return 0, false
	}
	file, _ := pos[s.FileKey].(string)
	off, _ := pos[s.OffsetKey].(json.Number)
	if file == "" || off == "" {
		return 0, true
	}
	n, _ := strconv.ParseUint(string(off), 10, 64)
	return cdc.BinlogPosVersion(file, n), true
}

// Messages splits a sample into messages: one per non-blank line, or the
// whole file when it is one pretty-printed document.
func Messages(sample []byte) [][]byte {
	if bytes.HasPrefix(sample, []byte("{\n")) {
		return [][]byte{sample}
	}
	var out [][]byte
	for _, line := range bytes.Split(sample, []byte("\n")) {
		if len(bytes.TrimSpace(line)) > 0 {
			out = append(out, line)
		}
	}
	return out
}

// Check compares got with the golden file at path, or with -update
// rewrites the file.
func Check(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\ngot  %s\nwant %s", path, got, want)
	}
}

func (s *Suite[V]) checkEvent(t *testing.T, id string, ev *cdc.Event, w Event[V]) {
	t.Helper()
	if ev.DB != w.DB || ev.Table != w.Table || ev.Op.String() != w.Op {
		t.Errorf("event %s: got %s.%s %s, want %s.%s %s", id, ev.DB, ev.Table, ev.Op, w.DB, w.Table, w.Op)
	}
	wantPK := w.PKColumns
	if len(wantPK) == 0 && s.Options.KeyColumns != nil {
		wantPK = s.Options.KeyColumns(w.DB, w.Table)
	}
	if strings.Join(ev.PK, ",") != strings.Join(wantPK, ",") {
		t.Errorf("event %s: pk %v, want %v", id, ev.PK, wantPK)
	}
	if w.EventTSMs != nil && *w.EventTSMs != 0 && ev.Commit.UnixMilli() != *w.EventTSMs {
		t.Errorf("event %s: commit %v, want %d ms", id, ev.Commit, *w.EventTSMs)
	}
	if w.EventTSMs != nil && *w.EventTSMs == 0 && !ev.Commit.IsZero() {
		t.Errorf("event %s: commit %v, want unknown", id, ev.Commit)
	}
	if v, ok := s.version(w.Position); ok && ev.Pos.Version != v {
		t.Errorf("event %s: version %x, want %x", id, ev.Pos.Version, v)
	}
	var binBefore, binAfter map[string]string
	if w.Binary != nil {
		binBefore, binAfter = w.Binary.Before, w.Binary.After
	}
	s.compareRow(t, id+" pk", ev, ev.Image(), w.PK, nil, true)
	s.compareRow(t, id+" before", ev, ev.Before, w.Before, binBefore, false)
	s.compareRow(t, id+" after", ev, ev.After, w.After, binAfter, false)
}

// compareRow checks every expected column; subset allows got to hold more.
func (s *Suite[V]) compareRow(t *testing.T, id string, ev *cdc.Event, got *cdc.Row, want map[string]V, bin map[string]string, subset bool) {
	t.Helper()
	if want == nil {
		if got != nil && !subset {
			t.Errorf("%s: got %v, want null", id, got)
		}
		return
	}
	if !subset && got.Len() != len(want) {
		t.Errorf("%s: got %d columns, want %d", id, got.Len(), len(want))
	}
	for name, wv := range want {
		v, ok := got.Lookup(name)
		if !ok {
			t.Errorf("%s: column %s missing", id, name)
			continue
		}
		col, _ := ev.Column(name)
		if err := s.Same(&col, v, wv, bin[name]); err != "" {
			t.Errorf("%s: column %s: %s", id, name, err)
		}
	}
}

// SameJSON compares a typed value with the producer's JSON value (decoded
// with UseNumber) by meaning: numbers by numeric value, bytes as base64,
// times as MySQL or RFC 3339 text, JSON documents by structure. JSON
// formats carry binary values in the value itself, so b64 is not used.
func SameJSON(col *cdc.Column, v cdc.Value, want any, _ string) string {
	bad := func() string { return fmt.Sprintf("got %T %v, want %T %v", v, v, want, want) }
	switch w := want.(type) {
	case nil:
		if v != nil {
			return bad()
		}
		return ""
	case bool:
		n := int64(0)
		if w {
			n = 1
		}
		if v != n {
			return bad()
		}
		return ""
	case json.Number:
		switch x := v.(type) {
		case float64:
			bits := 64
			if col.Kind == cdc.KindFloat {
				bits = 32
			}
			f, err := strconv.ParseFloat(string(w), bits)
			if err != nil || f != x {
				return bad()
			}
			return ""
		case int64, uint64, cdc.Decimal:
			a, ok1 := new(big.Rat).SetString(fmt.Sprint(x))
			b, ok2 := new(big.Rat).SetString(string(w))
			if !ok1 || !ok2 || a.Cmp(b) != 0 {
				return bad()
			}
			return ""
		}
		return bad()
	case string:
		switch x := v.(type) {
		case string:
			if x != w {
				return bad()
			}
		case cdc.Decimal:
			a, ok1 := new(big.Rat).SetString(string(x))
			b, ok2 := new(big.Rat).SetString(w)
			if !ok1 || !ok2 || a.Cmp(b) != 0 {
				return bad()
			}
		case []byte:
			b, err := base64.StdEncoding.DecodeString(w)
			if err != nil || !bytes.Equal(b, x) {
				return bad()
			}
		case time.Time:
			t, err := cdc.ParseDateTime(w)
			if err != nil || t != x {
				if t2, err := time.Parse(time.RFC3339Nano, w); err != nil || !t2.Equal(x) {
					return bad()
				}
			}
		case time.Duration:
			d, err := cdc.ParseTime(w)
			if err != nil || d != x {
				return bad()
			}
		case cdc.JSON:
			if !sameDoc(string(x), w) {
				return bad()
			}
		case cdc.Set:
			if strings.Join(x, ",") != w {
				return bad()
			}
		default:
			return bad()
		}
		return ""
	case []any, map[string]any:
		switch x := v.(type) {
		case cdc.JSON:
			b, _ := json.Marshal(w)
			if !sameDoc(string(x), string(b)) {
				return bad()
			}
			return ""
		case cdc.Set:
			b, _ := json.Marshal(w)
			c, _ := json.Marshal([]string(x))
			if string(b) != string(c) {
				return bad()
			}
			return ""
		}
	}
	return bad()
}

// sameDoc reports whether two JSON texts hold the same document.
func sameDoc(a, b string) bool {
	var x, y any
	da := json.NewDecoder(strings.NewReader(a))
	da.UseNumber()
	db := json.NewDecoder(strings.NewReader(b))
	db.UseNumber()
	if da.Decode(&x) != nil || db.Decode(&y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// Samples returns the contents of the testdata files matching pattern
// (e.g. "testdata/*.json*"), leaving out the .expected.json files: the
// seeds of a fuzz test.
func Samples(tb testing.TB, pattern string) [][]byte {
	tb.Helper()
	files, _ := filepath.Glob(pattern)
	var out [][]byte
	for _, p := range files {
		if strings.HasSuffix(p, ".expected.json") {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// HostileSeeds returns the messages of testdata/hostile (NAME.json or
// NAME.bin, with NAME.key as the key when present): the hostile corpus,
// seeded into the fuzz targets.
func HostileSeeds(tb testing.TB) []decode.Message {
	tb.Helper()
	reasons, _ := filepath.Glob(filepath.Join("testdata", "hostile", "*.reason"))
	if len(reasons) == 0 {
		tb.Fatal("no hostile corpus in testdata/hostile")
	}
	var out []decode.Message
	for _, rf := range reasons {
		base := strings.TrimSuffix(rf, ".reason")
		v, err := os.ReadFile(base + ".json")
		if err != nil {
			if v, err = os.ReadFile(base + ".bin"); err != nil {
				tb.Fatal(err)
			}
		}
		k, _ := os.ReadFile(base + ".key")
		out = append(out, decode.Message{Key: k, Value: v})
	}
	return out
}

// CheckEvent fails tb when a decoded row event lacks what every one has
// (db, table, an insert, update or delete, an image) or when
// decode.EventJSON cannot render it.
func CheckEvent(tb testing.TB, ev *cdc.Event) {
	tb.Helper()
	if ev.DB == "" || ev.Table == "" || ev.Op < cdc.Insert || ev.Op > cdc.Delete || ev.Image() == nil {
		tb.Fatalf("bad event %+v", ev)
	}
	if _, err := decode.EventJSON(*ev); err != nil {
		tb.Fatalf("EventJSON: %v", err)
	}
}

// CheckDecoded decodes msg, as a fuzz target does, and checks each event
// with CheckEvent when the decoder accepts it; it returns the events.
func CheckDecoded(tb testing.TB, dec decode.Decoder, msg decode.Message) []cdc.Event {
	tb.Helper()
	evs, err := dec.Decode(msg)
	if err != nil {
		return nil
	}
	for i := range evs {
		CheckEvent(tb, &evs[i])
	}
	return evs
}
