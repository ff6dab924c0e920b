package canaljson

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"math/big"
	"os"
	"path/filepath"
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
	SourceLine int                         `json:"source_line"`
	DB         string                      `json:"db"`
	Table      string                      `json:"table"`
	Op         string                      `json:"op"`
	PKColumns  []string                    `json:"pk_columns"`
	PK         map[string]*string          `json:"pk"`
	Before     map[string]*string          `json:"before"`
	After      map[string]*string          `json:"after"`
	DDL        *struct{ Type, SQL string } `json:"ddl"`
	EventTSMs  *int64                      `json:"event_ts_ms"`
	Binary     *struct {
		Before map[string]string `json:"before"`
		After  map[string]string `json:"after"`
	} `json:"binary_columns_base64"`
}

// TestGolden decodes every sample of testdata (copied from the shared
// format corpus) and compares by value with its .expected.json: the typed
// values rendered to MySQL text must equal the producer's text.
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
			if err := json.Unmarshal(raw, &exp); err != nil {
				t.Fatal(err)
			}
			sample, err := os.ReadFile(filepath.Join("testdata", exp.Sample))
			if err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var ddls []decode.DDL
			dec, _ := New(decode.Options{OnDDL: func(d decode.DDL) { mu.Lock(); ddls = append(ddls, d); mu.Unlock() }})
			type got struct {
				line int
				ev   cdc.Event
			}
			var all []got
			var lines [][]byte
			for i, line := range bytes.Split(sample, []byte("\n")) {
				if len(bytes.TrimSpace(line)) == 0 {
					continue
				}
				lines = append(lines, line)
				evs, err := dec.Decode(decode.Message{Value: line, Topic: "t", Offset: int64(i)})
				if err != nil {
					t.Fatalf("line %d: %v", i+1, err)
				}
				for _, ev := range evs {
					all = append(all, got{i + 1, ev})
				}
			}
			var wantRows []expectedEvent
			var wantDDL []expectedEvent
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
				if ddls[i].SQL != w.DDL.SQL || ddls[i].Type != w.DDL.Type || ddls[i].DB != w.DB || ddls[i].Table != w.Table {
					t.Errorf("ddl %d: got %+v, want %+v", i, ddls[i], w)
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
				if !json.Valid(line) {
					t.Fatalf("event %d: EventJSON invalid: %s", i, line)
				}
				golden.Write(line)
				golden.WriteByte('\n')
			}
			checkGolden(t, filepath.Join("testdata", name+".golden"), golden.Bytes())
		})
	}
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
	if strings.Join(ev.PK, ",") != strings.Join(w.PKColumns, ",") {
		t.Errorf("event %s: pk %v, want %v", id, ev.PK, w.PKColumns)
	}
	if w.EventTSMs != nil && ev.Commit.UnixMilli() != *w.EventTSMs {
		t.Errorf("event %s: commit %v, want %d ms", id, ev.Commit, *w.EventTSMs)
	}
	var binBefore, binAfter map[string]string
	if w.Binary != nil {
		binBefore, binAfter = w.Binary.Before, w.Binary.After
	}
	compareRow(t, id+" pk", ev, ev.Image(), w.PK, nil, true)
	compareRow(t, id+" before", ev, ev.Before, w.Before, binBefore, false)
	compareRow(t, id+" after", ev, ev.After, w.After, binAfter, false)
}

// compareRow checks every expected column; subset allows got to hold more.
func compareRow(t *testing.T, id string, ev *cdc.Event, got cdc.Row, want map[string]*string, bin map[string]string, subset bool) {
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
		if err := sameValue(&col, v, wv, bin[name]); err != "" {
			t.Errorf("%s: column %s: %s", id, name, err)
		}
	}
}

// sameValue compares a typed value with the producer's text.
func sameValue(col *cdc.Column, v cdc.Value, want *string, b64 string) string {
	if want == nil {
		if v != nil {
			return "got " + strconv.Quote(render(col, v)) + ", want NULL"
		}
		return ""
	}
	if v == nil {
		return "got NULL, want " + strconv.Quote(*want)
	}
	switch x := v.(type) {
	case []byte:
		if b64 != "" {
			if base64.StdEncoding.EncodeToString(x) != b64 {
				return "bytes " + base64.StdEncoding.EncodeToString(x) + ", want " + b64
			}
			return ""
		}
		want := []rune(*want)
		if len(want) != len(x) {
			return "byte length differs"
		}
		for i := range x {
			if rune(x[i]) != want[i] {
				return "bytes differ"
			}
		}
		return ""
	case float64:
		bits := 64
		if col.Kind == cdc.KindFloat {
			bits = 32
		}
		f, err := strconv.ParseFloat(*want, bits)
		if err != nil || f != x {
			return "got " + strconv.FormatFloat(x, 'g', -1, bits) + ", want " + *want
		}
		return ""
	case cdc.Decimal:
		a, ok1 := new(big.Rat).SetString(string(x))
		b, ok2 := new(big.Rat).SetString(*want)
		if !ok1 || !ok2 || a.Cmp(b) != 0 {
			return "got " + string(x) + ", want " + *want
		}
		return ""
	}
	if s := render(col, v); s != *want {
		return "got " + strconv.Quote(s) + ", want " + strconv.Quote(*want)
	}
	return ""
}

func render(col *cdc.Column, v cdc.Value) string {
	if t, ok := v.(time.Time); ok && col.Kind == cdc.KindDate {
		return t.Format("2006-01-02")
	}
	s, _ := cdc.FormatText(col, v)
	return s
}
