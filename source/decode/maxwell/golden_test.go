package maxwell

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

type expectedFile struct {
	Sample string          `json:"sample"`
	Events []expectedEvent `json:"events"`
}

type expectedEvent struct {
	SourceLine int            `json:"source_line"`
	DB         string         `json:"db"`
	Table      string         `json:"table"`
	Op         string         `json:"op"`
	PKColumns  []string       `json:"pk_columns"`
	PK         map[string]any `json:"pk"`
	Before     map[string]any `json:"before"`
	After      map[string]any `json:"after"`
	DDL        *struct {
		Type string `json:"type"`
		SQL  string `json:"sql"`
	} `json:"ddl"`
	EventTSMs *int64         `json:"event_ts_ms"`
	Position  map[string]any `json:"position"`
}

// goldenOptions are the decoder options the golden test uses.
func goldenOptions() decode.Options { return decode.Options{} }

// wantVersion is the Position.Version the expected position implies.
func wantVersion(pos map[string]any) uint64 {
	file, _ := pos["binlog_file"].(string)
	off, _ := pos["binlog_offset"].(json.Number)
	if file == "" || off == "" {
		return 0
	}
	n, _ := strconv.ParseUint(string(off), 10, 64)
	return cdc.BinlogPosVersion(file, n)
}

// TestGolden decodes every sample of testdata (copied from the shared
// format corpus, one message per line) and compares by meaning with its
// .expected.json: numbers by numeric value, typed values against the
// producer's representation. The EventJSON rendering is kept in .golden.
func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.expected.json")
	if len(files) == 0 {
		t.Fatal("no samples")
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".expected.json")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var exp expectedFile
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
			opts := goldenOptions()
			opts.OnDDL = func(d decode.DDL) { mu.Lock(); ddls = append(ddls, d); mu.Unlock() }
			dec, err := New(opts)
			if err != nil {
				t.Fatal(err)
			}
			type got struct {
				line int
				ev   cdc.Event
			}
			var all []got
			for i, line := range messages(sample) {
				evs, err := dec.Decode(decode.Message{Value: line, Topic: "t", Offset: int64(i)})
				if err != nil {
					t.Fatalf("message %d: %v", i+1, err)
				}
				for _, ev := range evs {
					all = append(all, got{i + 1, ev})
				}
			}
			var wantRows, wantDDL []expectedEvent
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
				if v := wantVersion(w.Position); g.Pos.Version != v {
					t.Errorf("ddl %d: version %x, want %x", i, g.Pos.Version, v)
				}
			}
			var golden bytes.Buffer
			for i, w := range wantRows {
				g := all[i]
				if w.SourceLine != 0 && w.SourceLine != g.line {
					t.Errorf("event %d: from line %d, want %d", i, g.line, w.SourceLine)
				}
				checkEvent(t, strconv.Itoa(i), &g.ev, w)
				line, err := decode.EventJSON(g.ev)
				if err != nil {
					t.Fatalf("event %d: EventJSON: %v", i, err)
				}
				golden.Write(line)
				golden.WriteByte('\n')
			}
			checkGolden(t, filepath.Join("testdata", name+".golden"), golden.Bytes())
		})
	}
}

// messages splits a sample into messages: one per line, or the whole file
// when it is one pretty-printed document.
func messages(sample []byte) [][]byte {
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

func checkGolden(t *testing.T, path string, got []byte) {
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

func checkEvent(t *testing.T, id string, ev *cdc.Event, w expectedEvent) {
	t.Helper()
	if ev.DB != w.DB || ev.Table != w.Table || ev.Op.String() != w.Op {
		t.Errorf("event %s: got %s.%s %s, want %s.%s %s", id, ev.DB, ev.Table, ev.Op, w.DB, w.Table, w.Op)
	}
	wantPK := w.PKColumns
	if len(wantPK) == 0 {
		if kc := goldenOptions().KeyColumns; kc != nil {
			wantPK = kc(w.DB, w.Table)
		}
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
	if v := wantVersion(w.Position); ev.Pos.Version != v {
		t.Errorf("event %s: version %x, want %x", id, ev.Pos.Version, v)
	}
	compareRow(t, id+" pk", ev, ev.Image(), w.PK, true)
	compareRow(t, id+" before", ev, ev.Before, w.Before, false)
	compareRow(t, id+" after", ev, ev.After, w.After, false)
}

// compareRow checks every expected column; subset allows got to hold more.
func compareRow(t *testing.T, id string, ev *cdc.Event, got cdc.Row, want map[string]any, subset bool) {
	t.Helper()
	if want == nil {
		if got != nil && !subset {
			t.Errorf("%s: got %v, want null", id, got)
		}
		return
	}
	if !subset && len(got) != len(want) {
		t.Errorf("%s: got %d columns, want %d", id, len(got), len(want))
	}
	for name, wv := range want {
		v, ok := got[name]
		if !ok {
			t.Errorf("%s: column %s missing", id, name)
			continue
		}
		col, _ := ev.Column(name)
		if err := sameValue(&col, v, wv); err != "" {
			t.Errorf("%s: column %s: %s", id, name, err)
		}
	}
}

// sameValue compares a typed value with the producer's JSON value (decoded
// with UseNumber) by meaning.
func sameValue(col *cdc.Column, v cdc.Value, want any) string {
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
			if !sameJSON(string(x), w) {
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
			if !sameJSON(string(x), string(b)) {
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

func sameJSON(a, b string) bool {
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
