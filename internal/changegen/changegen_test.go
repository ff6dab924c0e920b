package changegen

import (
	"bytes"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/source/decode"
	"github.com/rowsync/rowsync/source/decode/all"
)

func testSet(t *testing.T, partitions int) *Set {
	t.Helper()
	return Generate(Config{Seed: 7, Changes: 1500, Keys: 200, Partitions: partitions})
}

func TestGenerateDeterministic(t *testing.T) {
	a := Generate(Config{Seed: 3, Changes: 500, Keys: 50, Partitions: 4})
	b := Generate(Config{Seed: 3, Changes: 500, Keys: 50, Partitions: 4})
	for _, enc := range Encodings {
		sa, err := a.Stream(enc)
		if err != nil {
			t.Fatal(err)
		}
		sb, _ := b.Stream(enc)
		if !reflect.DeepEqual(sa, sb) {
			t.Errorf("%s: two runs with one seed differ", enc)
		}
	}
	if !reflect.DeepEqual(a.Expected("p:"), b.Expected("p:")) {
		t.Error("expected state differs")
	}
}

// TestGenerateCoverage checks the sequence holds every kind of change the
// end-to-end tests rely on, and that Final is the sequence applied.
func TestGenerateCoverage(t *testing.T) {
	s := testSet(t, 4)
	count := map[string]int{}
	state := map[*Table]map[string]*cdc.Row{Users: {}, Items: {}}
	for i := range s.Changes {
		c := &s.Changes[i]
		rows := state[c.Table]
		switch {
		case c.Op == cdc.Insert:
			count["insert"]++
			k := KeyOf(c.Table, c.After)
			if _, dup := rows[k]; dup {
				t.Fatalf("change %d inserts existing key %s", i, k)
			}
			rows[k] = c.After
		case c.Op == cdc.Delete:
			count["delete"]++
			k := KeyOf(c.Table, c.Before)
			if !rows[k].Equal(c.Before) {
				t.Fatalf("change %d: before image is not the current row", i)
			}
			delete(rows, k)
		case c.PKChange():
			count["pkchange"]++
			ko, kn := KeyOf(c.Table, c.Before), KeyOf(c.Table, c.After)
			if Partition(c.Table, c.Before, 4) != Partition(c.Table, c.After, 4) {
				t.Fatalf("change %d moves %s to another partition", i, ko)
			}
			delete(rows, ko)
			rows[kn] = c.After
		default:
			count["update"]++
			k := KeyOf(c.Table, c.Before)
			if !rows[k].Equal(c.Before) {
				t.Fatalf("change %d: before image is not the current row", i)
			}
			for name, v := range c.After.All() {
				if v == nil && c.Before.Get(name) != nil {
					count["set-null"]++
				}
			}
			rows[k] = c.After
		}
		if c.Table == Items {
			count["items"]++
		}
		if id, ok := c.Image().Get("id").(uint64); ok && id > 1<<63 {
			count["uint64"]++
		}
	}
	for _, k := range []string{"insert", "update", "delete", "pkchange", "set-null", "items", "uint64"} {
		if count[k] == 0 {
			t.Errorf("no %s in the sequence: %v", k, count)
		}
	}
	if !maps.EqualFunc(state[Users], s.Final[Users], (*cdc.Row).Equal) || !maps.EqualFunc(state[Items], s.Final[Items], (*cdc.Row).Equal) {
		t.Error("Final is not the sequence applied")
	}
	t.Logf("changes: %v, final rows: %d", count, len(s.Final[Users])+len(s.Final[Items]))
}

// wantEvents is what a decoder with full type information returns for c
// in encoding; Debezium splits a pk change into a delete and a create.
func wantEvents(encoding string, c *Change) []cdc.Event {
	ev := c.Event()
	if (encoding == EncDebezium || encoding == EncDebeziumNoSchema) && c.PKChange() {
		d, n := ev, ev
		d.Op, d.After = cdc.Delete, nil
		n.Op, n.Before = cdc.Insert, nil
		return []cdc.Event{d, n}
	}
	return []cdc.Event{ev}
}

// render is the Redis hash the projector writes for row of ev: described
// columns through their cdc.Column, others untyped.
func render(ev *cdc.Event, row *cdc.Row) map[string]string {
	h := map[string]string{}
	for name, v := range row.All() {
		col, ok := ev.Column(name)
		cp := &col
		if !ok {
			cp = nil
		}
		if s, ok := cdc.FormatText(cp, v); ok {
			h[name] = s
		}
	}
	return h
}

// valueEqual compares typed values; empty and nil byte slices are equal.
func valueEqual(a, b cdc.Value) bool {
	if ab, ok := a.([]byte); ok {
		bb, ok := b.([]byte)
		return ok && bytes.Equal(ab, bb)
	}
	if at, ok := a.(time.Time); ok {
		bt, ok := b.(time.Time)
		return ok && at.Equal(bt)
	}
	return reflect.DeepEqual(a, b)
}

func rowDiff(want, got *cdc.Row, skip map[string]bool) string {
	var diffs []string
	for _, k := range slices.Sorted(maps.Keys(want.Map())) {
		if skip[k] {
			continue
		}
		g, ok := got.Lookup(k)
		if !ok || !valueEqual(want.Get(k), g) {
			diffs = append(diffs, fmt.Sprintf("%s: want %#v (%T), got %#v (%T)", k, want.Get(k), want.Get(k), g, g))
		}
	}
	for k := range got.All() {
		if _, ok := want.Lookup(k); !ok && !skip[k] {
			diffs = append(diffs, fmt.Sprintf("%s: unexpected %#v", k, got.Get(k)))
		}
	}
	if len(diffs) == 0 {
		return ""
	}
	return fmt.Sprint(diffs)
}

func newDecoder(t *testing.T, encoding string) decode.Decoder {
	t.Helper()
	d, err := all.New(Decoder(encoding), decode.Options{KeyColumns: func(db, table string) []string {
		for _, tb := range Tables {
			if tb.DB == db && tb.Name == table {
				return tb.PK
			}
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestRoundTrip decodes every encoding of every change with rowsync's own
// decoders and checks the events are the generated ones, typed alike
// across formats, and render to the expected Redis hashes.
func TestRoundTrip(t *testing.T) {
	s := testSet(t, 4)
	for _, enc := range []string{EncCanalJSON, EncCanalProtobuf, EncMaxwell, EncDebezium} {
		t.Run(enc, func(t *testing.T) {
			dec := newDecoder(t, enc)
			for _, m := range Preamble(enc) {
				evs, err := dec.Decode(decode.Message{Key: m.Key, Value: m.Value, Topic: "t"})
				if err != nil || len(evs) != 0 {
					t.Fatalf("preamble: %v %v", evs, err)
				}
			}
			fails := 0
			for i := range s.Changes {
				c := &s.Changes[i]
				msgs, err := Encode(enc, c)
				if err != nil {
					t.Fatal(err)
				}
				var got []cdc.Event
				for j, m := range msgs {
					evs, err := dec.Decode(decode.Message{Key: m.Key, Value: m.Value, Topic: "t", Offset: int64(i)})
					if err != nil {
						t.Fatalf("change %d message %d: %v\n%s", i, j, err, m.Value)
					}
					got = append(got, evs...)
				}
				want := wantEvents(enc, c)
				if len(got) != len(want) {
					t.Fatalf("change %d: %d events, want %d", i, len(got), len(want))
				}
				for k := range want {
					w, g := &want[k], &got[k]
					var problems []string
					if w.DB != g.DB || w.Table != g.Table || w.Op != g.Op || !slices.Equal(w.PK, g.PK) {
						problems = append(problems, fmt.Sprintf("header %s.%s %s %v, want %s.%s %s %v", g.DB, g.Table, g.Op, g.PK, w.DB, w.Table, w.Op, w.PK))
					}
					if !g.Commit.Equal(w.Commit) {
						problems = append(problems, fmt.Sprintf("commit %v, want %v", g.Commit, w.Commit))
					}
					if d := rowDiff(w.Before, g.Before, nil); d != "" {
						problems = append(problems, "before: "+d)
					}
					if d := rowDiff(w.After, g.After, nil); d != "" {
						problems = append(problems, "after: "+d)
					}
					if img := w.Image(); !reflect.DeepEqual(render(g, g.Image()), Hash(c.Table, img)) {
						problems = append(problems, fmt.Sprintf("hash %v, want %v", render(g, g.Image()), Hash(c.Table, img)))
					}
					if len(g.Columns) > 0 {
						// Documents keep the event's column order, which
						// must be the table's whatever the path.
						var got, want []string
						for _, col := range g.Columns {
							got = append(got, col.Name)
						}
						for _, col := range c.Table.cols {
							want = append(want, col.Name)
						}
						if !slices.Equal(got, want) {
							problems = append(problems, fmt.Sprintf("column order %v, want the table's %v", got, want))
						}
					}
					if len(problems) > 0 {
						fails++
						t.Errorf("change %d (%s %s) event %d: %v\nmessage: %s", i, c.Table.Name, c.Op, k, problems, msgs[0].Value)
						if fails > 5 {
							t.FailNow()
						}
					}
				}
			}
		})
	}
}

// TestRoundTripLossy covers the encodings that cannot carry every type:
// Debezium without schema keeps only columns whose JSON form is typed
// (strings, integers within int64, doubles, enum labels), and JSON lines
// only text, with NULL as "".
func TestRoundTripLossy(t *testing.T) {
	s := testSet(t, 1)
	t.Run(EncDebeziumNoSchema, func(t *testing.T) {
		dec := newDecoder(t, EncDebeziumNoSchema)
		// typed from the JSON form alone: what survives untyped
		skip := map[string]bool{"balance": true, "created": true, "birthday": true, "avatar": true,
			"prefs": true, "tags": true, "price": true}
		for i := range s.Changes {
			c := &s.Changes[i]
			msgs, _ := Encode(EncDebeziumNoSchema, c)
			var got []cdc.Event
			for _, m := range msgs {
				evs, err := dec.Decode(decode.Message{Key: m.Key, Value: m.Value})
				if err != nil {
					t.Fatalf("change %d: %v", i, err)
				}
				got = append(got, evs...)
			}
			want := wantEvents(EncDebeziumNoSchema, c)
			if len(got) != len(want) {
				t.Fatalf("change %d: %d events, want %d", i, len(got), len(want))
			}
			for k := range want {
				w, g := want[k], got[k]
				if w.Op != g.Op || !slices.Equal(w.PK, g.PK) {
					t.Fatalf("change %d: %s %v, want %s %v", i, g.Op, g.PK, w.Op, w.PK)
				}
				if id, big := w.Image().Get("id").(uint64); big && id > 1<<63 {
					continue // long mode: negative without the source type
				}
				if d := rowDiff(w.Image(), g.Image(), skip); d != "" {
					t.Fatalf("change %d: %s", i, d)
				}
			}
		}
	})
	t.Run(EncJSONL, func(t *testing.T) {
		dec := newDecoder(t, EncJSONL)
		for i := range s.Changes {
			c := &s.Changes[i]
			msgs, _ := Encode(EncJSONL, c)
			evs, err := dec.Decode(decode.Message{Value: msgs[0].Value})
			if err != nil || len(evs) != 1 {
				t.Fatalf("change %d: %v %v", i, evs, err)
			}
			g, w := evs[0], c.Event()
			if g.Op != w.Op || !slices.Equal(g.PK, w.PK) {
				t.Fatalf("change %d: %s %v, want %s %v", i, g.Op, g.PK, w.Op, w.PK)
			}
			want := map[string]string{}
			for _, col := range c.Table.cols {
				if JSONLLossy[col.Name] {
					continue
				}
				s, _ := cdc.FormatText(&col, w.Image().Get(col.Name))
				want[col.Name] = s // NULL is ""
			}
			got := render(&g, g.Image())
			for k := range JSONLLossy {
				delete(got, k)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("change %d: hash %v, want %v", i, got, want)
			}
		}
	})
}

// TestJavaDouble pins the Java Double.toString forms canal and Jackson
// print.
func TestJavaDouble(t *testing.T) {
	for _, tc := range []struct {
		f    float64
		want string
	}{{0, "0.0"}, {98.6, "98.6"}, {100, "100.0"}, {1e10, "1.0E10"}, {1.5e-7, "1.5E-7"}, {-0.125, "-0.125"}, {1234567.5, "1234567.5"}} {
		if got := javaDouble(tc.f); got != tc.want {
			t.Errorf("javaDouble(%v) = %q, want %q", tc.f, got, tc.want)
		}
	}
}

// TestPartitionVectors checks Partition against canal's routing vectors
// (javaHash is Java's String.hashCode).
func TestPartitionVectors(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want int32
	}{{"", 0}, {"1001", 1507424}, {"shop", 3529462}, {"polygenelubricants", -2147483648}, {"张三🚀", 746441356}, {"SKU-9", 78969705}} {
		if got := javaHash(tc.s); got != tc.want {
			t.Errorf("javaHash(%q) = %d, want %d", tc.s, got, tc.want)
		}
	}
	// spec vector: shop.user_profile id 1001 over 3 partitions → 0
	tb := newTable("shop", "user_profile", []string{"id"}, ColumnDef{"id", "bigint(20) unsigned", false})
	if p := Partition(tb, cdc.RowOf("id", int64(1001)), 3); p != 0 {
		t.Errorf("partition %d, want 0", p)
	}
}

func TestUnscaledBytes(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want []byte
	}{{"0.00", []byte{0}}, {"1.27", []byte{0x7f}}, {"1.28", []byte{0, 0x80}}, {"-1.28", []byte{0x80}}, {"-1.29", []byte{0xff, 0x7f}}, {"-0.01", []byte{0xff}}} {
		if got := unscaledBytes(tc.s); !bytes.Equal(got, tc.want) {
			t.Errorf("unscaledBytes(%s) = %x, want %x", tc.s, got, tc.want)
		}
	}
}

// TestJSONColumnTextAcrossFormats: MySQL (and canal) print a JSON column
// with spaces ({"a": 1}); Maxwell and Debezium re-serialize it, and their
// decoders render it back in MySQL's form, so every path gives the same
// Redis hash.
func TestJSONColumnTextAcrossFormats(t *testing.T) {
	row := cdc.RowOf("id", int64(1), "name", "n", "balance", cdc.Decimal("1.00"), "created", baseTime, "status", "active", "prefs", cdc.JSON(`{"a": 1, "b": [1, 2]}`))
	c := &Change{Table: Users, Op: cdc.Insert, After: row, Commit: baseTime}
	var texts []string
	for _, enc := range []string{EncCanalJSON, EncCanalProtobuf, EncMaxwell, EncDebezium} {
		dec := newDecoder(t, enc)
		for _, m := range Preamble(enc) {
			dec.Decode(decode.Message{Value: m.Value})
		}
		msgs, _ := Encode(enc, c)
		evs, err := dec.Decode(decode.Message{Key: msgs[0].Key, Value: msgs[0].Value})
		if err != nil {
			t.Fatal(err)
		}
		texts = append(texts, fmt.Sprint(evs[0].After.Get("prefs")))
	}
	for i := 1; i < len(texts); i++ {
		if texts[i] != texts[0] {
			t.Errorf("prefs text differs by format: %q", texts)
		}
	}
}

// TestOnlyTables: Config.Tables restricts the changes to the named tables.
func TestOnlyTables(t *testing.T) {
	s := Generate(Config{Seed: 1, Changes: 500, Keys: 50, Tables: []string{"users"}})
	if len(s.Tables) != 1 || s.Tables[0].Name != "users" {
		t.Fatalf("tables %v, want users only", s.Tables)
	}
	for i := range s.Changes {
		if s.Changes[i].Table != s.Tables[0] {
			t.Fatalf("change %d is on %s", i, s.Changes[i].Table.Name)
		}
	}
	if n := len(s.Final[s.Tables[0]]); n == 0 {
		t.Error("no live users at the end")
	}
}
