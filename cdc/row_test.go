package cdc

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
)

// wideNames returns n column names, c0 to c(n-1).
func wideNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("c%d", i)
	}
	return names
}

func mustLayout(t testing.TB, names ...string) *Layout {
	t.Helper()
	l, err := NewLayout(names)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestRowNil: a nil row is the empty image: every read answers "no
// columns", and the writes that make sense on it do nothing.
func TestRowNil(t *testing.T) {
	var r *Row
	if r.Len() != 0 || r.Width() != 0 || r.Layout() != nil || r.Has("a") || r.Get("a") != nil {
		t.Fatal("nil row has columns")
	}
	if v, ok := r.Lookup("a"); ok || v != nil {
		t.Fatalf("Lookup = %v, %v", v, ok)
	}
	for name := range r.All() {
		t.Fatalf("All yields %s", name)
	}
	if names := r.Names(); names == nil || len(names) != 0 {
		t.Fatalf("Names = %#v, want empty", names)
	}
	if r.Map() != nil || r.Clone() != nil || r.String() != "<nil>" {
		t.Fatalf("Map %v, Clone %v, String %q", r.Map(), r.Clone(), r.String())
	}
	if b, err := r.MarshalJSON(); err != nil || string(b) != "null" {
		t.Fatalf("MarshalJSON = %s, %v", b, err)
	}
	if !r.Equal(nil) || r.Equal(RowOf()) || RowOf().Equal(r) {
		t.Fatal("a nil row equals only nil")
	}
	r.Delete("a")
	r.Reset()
	var l *Layout
	if l.Len() != 0 || l.Names() != nil {
		t.Fatal("nil layout has names")
	}
	if _, ok := l.Index("a"); ok {
		t.Fatal("nil layout indexes a")
	}
}

// TestRowRead: Lookup, Get, Has, Len, Width, At, All and Names on rows of
// each making, narrow and wide, telling NULL from absent.
func TestRowRead(t *testing.T) {
	type col struct {
		name    string
		v       Value
		present bool
	}
	narrow := mustLayout(t, "id", "name", "note", "gone")
	wide := mustLayout(t, wideNames(linearNames+8)...)
	cases := []struct {
		name  string
		row   func() *Row
		width int
		cols  []col // in layout order
	}{
		{"RowOf", func() *Row { return RowOf("id", int64(1), "name", "ann", "note", nil) }, 3,
			[]col{{"id", int64(1), true}, {"name", "ann", true}, {"note", nil, true}}},
		{"RowOf repeated name", func() *Row { return RowOf("id", int64(1), "id", int64(2)) }, 1,
			[]col{{"id", int64(2), true}}},
		{"RowOf empty", func() *Row { return RowOf() }, 0, nil},
		{"zero Row", func() *Row { return new(Row) }, 0, nil},
		{"NewRow partly set", func() *Row {
			r := NewRow(narrow)
			r.SetAt(0, int64(1))
			r.SetAt(2, nil)
			return r
		}, 4, []col{{"id", int64(1), true}, {"name", nil, false}, {"note", nil, true}, {"gone", nil, false}}},
		{"NewRow nil layout", func() *Row { return NewRow(nil) }, 0, nil},
		{"wide shared", func() *Row {
			r := NewRow(wide)
			for i := 0; i < wide.Len(); i += 2 {
				r.SetAt(i, int64(i))
			}
			return r
		}, linearNames + 8, func() []col {
			var cs []col
			for i, name := range wide.Names() {
				if i%2 == 0 {
					cs = append(cs, col{name, int64(i), true})
				} else {
					cs = append(cs, col{name, nil, false})
				}
			}
			return cs
		}()},
		{"wide own", func() *Row {
			r := new(Row)
			for i, name := range wideNames(linearNames + 8) {
				r.Set(name, int64(i))
			}
			return r
		}, linearNames + 8, func() []col {
			var cs []col
			for i, name := range wideNames(linearNames + 8) {
				cs = append(cs, col{name, int64(i), true})
			}
			return cs
		}()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.row()
			if r.Width() != tc.width || r.Layout().Len() != tc.width {
				t.Fatalf("width %d, layout of %d; want %d", r.Width(), r.Layout().Len(), tc.width)
			}
			var present []string
			m := map[string]Value{}
			for i, c := range tc.cols {
				name, v, ok := r.At(i)
				if name != c.name || v != c.v || ok != c.present {
					t.Errorf("At(%d) = %s, %v, %v; want %s, %v, %v", i, name, v, ok, c.name, c.v, c.present)
				}
				if j, ok := r.Layout().Index(c.name); !ok || j != i {
					t.Errorf("Index(%s) = %d, %v; want %d", c.name, j, ok, i)
				}
				v, ok = r.Lookup(c.name)
				if v != c.v || ok != c.present || r.Has(c.name) != c.present || r.Get(c.name) != c.v {
					t.Errorf("Lookup(%s) = %v, %v; Has %v, Get %v; want %v, %v", c.name, v, ok, r.Has(c.name), r.Get(c.name), c.v, c.present)
				}
				if c.present {
					present = append(present, c.name)
					m[c.name] = c.v
				}
			}
			if r.Len() != len(present) {
				t.Errorf("Len %d, want %d", r.Len(), len(present))
			}
			if !slices.Equal(r.Names(), present) {
				t.Errorf("Names %v, want %v", r.Names(), present)
			}
			var all []string
			for name, v := range r.All() {
				all = append(all, name)
				if v != m[name] {
					t.Errorf("All: %s = %v, want %v", name, v, m[name])
				}
			}
			if !slices.Equal(all, present) {
				t.Errorf("All yields %v, want %v", all, present)
			}
			if !maps.Equal(r.Map(), m) {
				t.Errorf("Map %v, want %v", r.Map(), m)
			}
			if r.Has("missing") || r.Get("missing") != nil {
				t.Error("row carries a column it has no name for")
			}
			if _, ok := r.Layout().Index("missing"); ok {
				t.Error("layout indexes a name it lacks")
			}
			// All stops when its caller does
			n := 0
			for range r.All() {
				n++
				break
			}
			if n != min(1, len(present)) {
				t.Errorf("All yielded %d after break", n)
			}
		})
	}
}

// TestRowWrite: Set, SetAt, Delete and Reset, and what they leave to
// the other rows of a shared layout.
func TestRowWrite(t *testing.T) {
	shared := mustLayout(t, "id", "name")
	cases := []struct {
		name  string
		write func(r, other *Row) // r and other share layout shared
		want  *Row                // r's columns after, in order
		width int
	}{
		{"SetAt fills", func(r, _ *Row) { r.SetAt(1, "ann"); r.SetAt(0, int64(1)) }, RowOf("id", int64(1), "name", "ann"), 2},
		{"SetAt twice counts once", func(r, _ *Row) { r.SetAt(0, int64(1)); r.SetAt(0, int64(2)) }, RowOf("id", int64(2)), 2},
		{"SetAt NULL is present", func(r, _ *Row) { r.SetAt(0, nil) }, RowOf("id", nil), 2},
		{"Set of a layout name", func(r, _ *Row) { r.Set("name", "ann") }, RowOf("name", "ann"), 2},
		{"Set of an existing name", func(r, _ *Row) { r.Set("id", int64(1)); r.Set("id", int64(2)) }, RowOf("id", int64(2)), 2},
		{"Set of a new name copies the layout", func(r, _ *Row) { r.SetAt(0, int64(1)); r.Set("extra", true) },
			RowOf("id", int64(1), "extra", true), 3},
		{"Set of new names keeps their order", func(r, _ *Row) { r.Set("z", 1); r.Set("a", 2); r.Set("id", 3) },
			RowOf("id", 3, "z", 1, "a", 2), 4},
		{"Delete", func(r, _ *Row) { r.SetAt(0, int64(1)); r.SetAt(1, "x"); r.Delete("id") }, RowOf("name", "x"), 2},
		{"Delete absent and unknown", func(r, _ *Row) { r.SetAt(1, "x"); r.Delete("id"); r.Delete("nope") }, RowOf("name", "x"), 2},
		{"Delete then Set", func(r, _ *Row) { r.SetAt(0, int64(1)); r.Delete("id"); r.Set("id", int64(5)) }, RowOf("id", int64(5)), 2},
		{"Delete then Set new", func(r, _ *Row) { r.Set("x", 1); r.Delete("x"); r.Set("x", 2) }, RowOf("x", 2), 3},
		{"Reset then Set", func(r, _ *Row) { r.SetAt(0, int64(1)); r.Reset(); r.Set("b", 1); r.Set("a", 2) }, RowOf("b", 1, "a", 2), 2},
		{"Reset", func(r, _ *Row) { r.SetAt(0, int64(1)); r.Set("x", 1); r.Reset() }, RowOf(), 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, other := NewRow(shared), NewRow(shared)
			other.SetAt(0, int64(9))
			tc.write(r, other)
			if !r.Equal(tc.want) || !slices.Equal(r.Names(), tc.want.Names()) {
				t.Errorf("row %v, want %v in that order", r, tc.want)
			}
			if r.Width() != tc.width {
				t.Errorf("width %d, want %d", r.Width(), tc.width)
			}
			// the shared layout and its other row are as they were
			if !slices.Equal(shared.Names(), []string{"id", "name"}) {
				t.Fatalf("shared layout now %v", shared.Names())
			}
			if other.Layout() != shared || other.Width() != 2 || !other.Equal(RowOf("id", int64(9))) {
				t.Errorf("other row now %v (layout %p)", other, other.Layout())
			}
			if r.Width() > 2 && r.Layout() == shared {
				t.Error("Set added a name to the shared layout")
			}
		})
	}
}

// TestRowSetWide: Set past linearNames indexes the own layout, a copied
// wide layout keeps its index, and Delete/Set/Reset keep them right.
func TestRowSetWide(t *testing.T) {
	wide := mustLayout(t, wideNames(linearNames+3)...)
	rows := map[string]*Row{"own": new(Row), "copied": NewRow(wide)}
	for name, r := range rows {
		t.Run(name, func(t *testing.T) {
			for i := range linearNames + 10 {
				r.Set(fmt.Sprintf("c%d", i), int64(i))
			}
			if r.Len() != linearNames+10 || r.Width() != linearNames+10 {
				t.Fatalf("len %d width %d", r.Len(), r.Width())
			}
			if r.Layout() == wide || wide.Len() != linearNames+3 {
				t.Fatal("Set grew the shared layout")
			}
			for i := range linearNames + 10 {
				name := fmt.Sprintf("c%d", i)
				if j, ok := r.Layout().Index(name); !ok || j != i || r.Get(name) != int64(i) {
					t.Fatalf("%s: index %d, %v, value %v", name, j, ok, r.Get(name))
				}
			}
			r.Delete("c3")
			r.Set("c3", "again")
			r.Set("new", true)
			if r.Get("c3") != "again" || r.Get("new") != true || r.Len() != linearNames+11 {
				t.Fatalf("after Delete/Set: %v", r)
			}
			if i, _ := r.Layout().Index("c3"); i != 3 {
				t.Fatalf("c3 moved to %d", i)
			}
			r.Reset()
			r.Set("c20", int64(1)) // once at index 20 of the old layout
			if i, ok := r.Layout().Index("c20"); !ok || i != 0 || r.Has("c0") || r.Len() != 1 {
				t.Fatalf("after Reset: %v, c20 at %d", r, i)
			}
		})
	}
}

// TestNewLayout: names are kept in order and indexed, a repeated name is
// an error, narrow or wide.
func TestNewLayout(t *testing.T) {
	wide := wideNames(linearNames + 5)
	cases := []struct {
		name  string
		names []string
		err   string
	}{
		{"empty", nil, ""},
		{"narrow", []string{"id", "a", "b"}, ""},
		{"at linearNames", wideNames(linearNames), ""},
		{"wide", wide, ""},
		{"narrow duplicate", []string{"id", "a", "id"}, `column "id" named twice`},
		{"wide duplicate", append(slices.Clone(wide), "c7"), `column "c7" named twice`},
		{"wide duplicate first", append([]string{"c9"}, wide...), `column "c9" named twice`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l, err := NewLayout(tc.names)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err || l != nil {
					t.Fatalf("NewLayout = %v, %v; want error %q", l, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if l.Len() != len(tc.names) || !slices.Equal(l.Names(), tc.names) {
				t.Fatalf("names %v", l.Names())
			}
			for i, name := range tc.names {
				if j, ok := l.Index(name); !ok || j != i {
					t.Errorf("Index(%s) = %d, %v; want %d", name, j, ok, i)
				}
			}
			if _, ok := l.Index("nope"); ok {
				t.Error("Index of a missing name")
			}
		})
	}
}

// TestRowOfPanics: RowOf's misuse is a programming error.
func TestRowOfPanics(t *testing.T) {
	for _, args := range [][]Value{{"a"}, {1, 2}, {"a", 1, nil, 2}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("RowOf%v did not panic", args)
				}
			}()
			RowOf(args...)
		}()
	}
}

// TestRowClone: a clone carries the same columns in the same order and
// shares nothing writable with its source, whatever the layout.
func TestRowClone(t *testing.T) {
	shared := mustLayout(t, "id", "name", "x")
	wideOwn := new(Row)
	for i, name := range wideNames(linearNames + 2) {
		wideOwn.Set(name, int64(i))
	}
	sharedRow := NewRow(shared)
	sharedRow.SetAt(0, int64(1))
	sharedRow.SetAt(2, []byte("b"))
	cases := map[string]*Row{
		"own":    RowOf("id", int64(1), "name", "ann", "n", nil),
		"shared": sharedRow,
		"wide":   wideOwn,
		"empty":  RowOf(),
	}
	for name, src := range cases {
		t.Run(name, func(t *testing.T) {
			before := src.String()
			c := src.Clone()
			if !c.Equal(src) || !slices.Equal(c.Names(), src.Names()) || c.Width() != src.Width() {
				t.Fatalf("clone %v of %v", c, src)
			}
			if (c.Layout() == src.Layout()) != (src == sharedRow) {
				t.Fatalf("clone layout %p, source %p: an own layout must be copied, a shared one shared", c.Layout(), src.Layout())
			}
			srcNames := slices.Clone(src.Layout().Names())
			c.Set("added", true)
			c.Set("id", int64(99))
			c.Delete("name")
			if src.String() != before || !slices.Equal(src.Layout().Names(), srcNames) {
				t.Fatalf("source changed with its clone: %v, layout %v", src, src.Layout().Names())
			}
			// and the other way round
			c2 := src.Clone()
			src.Set("late", 1)
			src.Reset()
			if c2.String() != before {
				t.Fatalf("clone changed with its source: %v, want %v", c2, before)
			}
		})
	}
}

// TestRowEqual: same columns and values in any order and any layout;
// []byte by content; NULL is not absent.
func TestRowEqual(t *testing.T) {
	l := mustLayout(t, "b", "a", "c")
	ofL := func(vals ...Value) *Row { // vals by l's order; nil-absent via absent marker
		r := NewRow(l)
		for i, v := range vals {
			if v != absent {
				r.SetAt(i, v)
			}
		}
		return r
	}
	cases := []struct {
		name string
		a, b *Row
		want bool
	}{
		{"same", RowOf("a", 1, "b", "x"), RowOf("a", 1, "b", "x"), true},
		{"order", RowOf("a", 1, "b", "x"), RowOf("b", "x", "a", 1), true},
		{"layouts", RowOf("a", 1, "b", "x"), ofL("x", 1, absent), true},
		{"bytes by content", RowOf("a", []byte("xy")), RowOf("a", []byte("xy")), true},
		{"bytes differ", RowOf("a", []byte("xy")), RowOf("a", []byte("xz")), false},
		{"bytes vs string", RowOf("a", []byte("xy")), RowOf("a", "xy"), false},
		{"string vs bytes", RowOf("a", "xy"), RowOf("a", []byte("xy")), false},
		{"types differ", RowOf("a", int64(1)), RowOf("a", uint64(1)), false},
		{"value differs", RowOf("a", 1, "b", "x"), RowOf("a", 1, "b", "y"), false},
		{"NULL vs absent", RowOf("a", 1, "b", nil), RowOf("a", 1), false},
		{"absent vs NULL", ofL(absent, 1, absent), ofL(nil, 1, absent), false},
		{"NULL both", RowOf("a", nil), ofL(absent, nil, absent), true},
		{"extra column", RowOf("a", 1), RowOf("a", 1, "c", 2), false},
		{"other column", RowOf("a", 1), RowOf("b", 1), false},
		{"deleted", func() *Row { r := RowOf("a", 1, "b", 2); r.Delete("b"); return r }(), RowOf("a", 1), true},
		{"empty vs empty", RowOf(), NewRow(l), true},
		{"nested", RowOf("j", map[string]any{"k": []any{1.0}}), RowOf("j", map[string]any{"k": []any{1.0}}), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.a.Equal(tc.b); got != tc.want {
				t.Errorf("%v.Equal(%v) = %v, want %v", tc.a, tc.b, got, tc.want)
			}
			if got := tc.b.Equal(tc.a); got != tc.want {
				t.Errorf("%v.Equal(%v) = %v, want %v", tc.b, tc.a, got, tc.want)
			}
		})
	}
}

func TestRowString(t *testing.T) {
	cases := []struct {
		row  *Row
		want string
	}{
		{nil, "<nil>"},
		{RowOf(), "{}"},
		{RowOf("id", int64(1), "name", "ann", "n", nil), "{id:1 name:ann n:<nil>}"},
		{RowOf("z", true, "a", []byte("hi")), "{z:true a:[104 105]}"},
		{func() *Row { r := RowOf("a", 1, "b", 2); r.Delete("a"); return r }(), "{b:2}"},
	}
	for _, tc := range cases {
		if got := tc.row.String(); got != tc.want {
			t.Errorf("String = %q, want %q", got, tc.want)
		}
		if got := fmt.Sprint(tc.row); got != tc.want {
			t.Errorf("Sprint = %q, want %q", got, tc.want)
		}
	}
}

// TestRowJSON: a row encodes as an object in column order and decodes
// back to an equal row, in the same order.
func TestRowJSON(t *testing.T) {
	wide := new(Row)
	var wideJSON strings.Builder
	wideJSON.WriteByte('{')
	for i, name := range wideNames(linearNames + 2) {
		wide.Set(name, float64(i))
		if i > 0 {
			wideJSON.WriteByte(',')
		}
		fmt.Fprintf(&wideJSON, "%q:%d", name, i)
	}
	wideJSON.WriteByte('}')
	cases := []struct {
		name string
		row  *Row
		json string
	}{
		{"empty", RowOf(), `{}`},
		{"column order", RowOf("z", 1.5, "a", "x", "n", nil, "t", true), `{"z":1.5,"a":"x","n":null,"t":true}`},
		{"escaped", RowOf("q\"<k>", "a&b\n"), `{"q\"\u003ck\u003e":"a\u0026b\n"}`},
		{"nested", RowOf("j", map[string]any{"k": []any{1.0, "s"}}), `{"j":{"k":[1,"s"]}}`},
		{"wide", wide, wideJSON.String()},
		{"absent skipped", func() *Row { r := RowOf("a", 1.0, "b", 2.0); r.Delete("a"); return r }(), `{"b":2}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(tc.row)
			if err != nil || string(b) != tc.json {
				t.Fatalf("Marshal = %s, %v; want %s", b, err, tc.json)
			}
			var back Row
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if !back.Equal(tc.row) || !slices.Equal(back.Names(), tc.row.Names()) {
				t.Fatalf("round trip %v, want %v in that order", &back, tc.row)
			}
			// in a struct, through a *Row field
			type ev struct {
				After *Row `json:"after"`
			}
			b, err = json.Marshal(ev{tc.row})
			if err != nil || string(b) != `{"after":`+tc.json+`}` {
				t.Fatalf("Marshal field = %s, %v", b, err)
			}
			var e ev
			if err := json.Unmarshal(b, &e); err != nil || !e.After.Equal(tc.row) {
				t.Fatalf("Unmarshal field = %v, %v", e.After, err)
			}
		})
	}
	// []byte encodes as base64, as encoding/json does
	if b, _ := json.Marshal(RowOf("b", []byte("hi"))); string(b) != `{"b":"aGk="}` {
		t.Errorf("bytes: %s", b)
	}
	// a repeated member keeps its last value, in its first place
	var r Row
	if err := json.Unmarshal([]byte(`{"a":1,"b":2,"a":3}`), &r); err != nil || !r.Equal(RowOf("a", 3.0, "b", 2.0)) || !slices.Equal(r.Names(), []string{"a", "b"}) {
		t.Errorf("repeated member: %v, %v", &r, err)
	}
	// null leaves a row alone and makes a *Row field nil
	r2 := RowOf("a", 1.0)
	if err := r2.UnmarshalJSON([]byte(" null ")); err != nil || !r2.Equal(RowOf("a", 1.0)) {
		t.Errorf("null: %v, %v", r2, err)
	}
	e := struct{ After *Row }{RowOf("x", 1)}
	if err := json.Unmarshal([]byte(`{"After":null}`), &e); err != nil || e.After != nil {
		t.Errorf("null field: %v, %v", e.After, err)
	}
	for _, bad := range []string{`[1]`, `"x"`, `{"a":}`, `{"a":1`, `3`} {
		var r Row
		if err := r.UnmarshalJSON([]byte(bad)); err == nil {
			t.Errorf("UnmarshalJSON(%s) = %v, want an error", bad, &r)
		}
	}
	// a value encoding/json cannot encode names its column
	if _, err := json.Marshal(RowOf("f", func() {})); err == nil || !strings.Contains(err.Error(), "column f") {
		t.Errorf("Marshal of a func: %v", err)
	}
}

// TestRowReset: Reset empties a row of any making, which then fills
// again by Set in the new order, leaving rows that shared its layout.
func TestRowReset(t *testing.T) {
	shared := mustLayout(t, "id", "name")
	other := NewRow(shared)
	other.SetAt(1, "o")
	sharedRow := NewRow(shared)
	sharedRow.SetAt(0, int64(1))
	wide := new(Row)
	for i, name := range wideNames(linearNames + 2) {
		wide.Set(name, i)
	}
	pooled := (&RowPool{}).Rows().Get(4)
	pooled.Set("p", 1)
	for name, r := range map[string]*Row{"own": RowOf("a", 1, "b", 2), "shared": sharedRow, "wide": wide, "pooled": pooled, "zero": new(Row)} {
		t.Run(name, func(t *testing.T) {
			r.Reset()
			if r.Len() != 0 || r.Width() != 0 || len(r.Names()) != 0 || r.Has("a") || r.Has("id") || r.Has("c0") {
				t.Fatalf("after Reset: %v, width %d", r, r.Width())
			}
			r.Set("name", "n")
			r.Set("id", int64(2))
			if !slices.Equal(r.Names(), []string{"name", "id"}) || r.Get("id") != int64(2) {
				t.Fatalf("refilled: %v", r)
			}
			if !slices.Equal(shared.Names(), []string{"id", "name"}) || !other.Equal(RowOf("name", "o")) || other.Layout() != shared {
				t.Fatalf("shared layout %v, other row %v", shared.Names(), other)
			}
		})
	}
}

// TestRowGrownLayout: a row made of another row's own layout (which the
// Layout doc forbids) reads the columns that layout later gains as
// absent instead of indexing past its values.
func TestRowGrownLayout(t *testing.T) {
	own := RowOf("a", 1)
	if own.Layout().Shared() {
		t.Fatal("a RowOf layout reports Shared")
	}
	r := NewRow(own.Layout())
	var batch *BatchRows
	p := (&RowPool{}).Rows()
	for _, r2 := range []*Row{r, batch.Of(own.Layout()), p.Of(own.Layout())} {
		if r2.Layout() == own.Layout() {
			t.Fatal("a row was made of another row's own layout: it would see that row's columns come and go")
		}
		r2.SetAt(0, 2)
	}
	own.Set("b", 3)
	if v, ok := r.Lookup("b"); ok || v != nil || r.Get("a") != 2 || r.Width() != 1 || r.Layout().Len() != 1 {
		t.Fatalf("Lookup(b) = %v, %v; width %d, layout %d", v, ok, r.Width(), r.Layout().Len())
	}
	r.Set("c", 4) // its copy is its own
	if own.Has("c") || r.Has("b") || r.Get("c") != 4 {
		t.Fatalf("own %v, r %v", own, r)
	}
	p.Recycle()
}

func TestRowIndexFrom(t *testing.T) {
	l, err := NewLayout([]string{"a", "b", "c"})
	if err != nil {
		t.Fatal(err)
	}
	if !l.Shared() {
		t.Fatal("a NewLayout layout is not Shared")
	}
	r := NewRow(l)
	for _, tc := range []struct {
		name string
		at   int
		want int
		ok   bool
	}{
		{"a", 0, 0, true},
		{"b", 1, 1, true},
		{"c", 0, 2, true}, // wrong hint: searched
		{"c", 3, 2, true}, // hint past the end
		{"c", -1, 2, true},
		{"z", 1, 0, false},
	} {
		if got, ok := r.IndexFrom(tc.name, tc.at); got != tc.want || ok != tc.ok {
			t.Errorf("IndexFrom(%q, %d) = %d, %v; want %d, %v", tc.name, tc.at, got, ok, tc.want, tc.ok)
		}
	}
	var nilRow *Row
	if _, ok := nilRow.IndexFrom("a", 0); ok {
		t.Error("a nil row found a column")
	}
}

// BenchmarkRowFill compares filling and reading back a 10-column row
// image as a map (rowsync's rows before cdc.Row) and as a pooled Row of
// a shared layout, as a decoder and a sink do.
func BenchmarkRowFill(b *testing.B) {
	names := wideNames(10)
	vals := make([]Value, len(names))
	for i := range vals {
		if i%2 == 0 {
			vals[i] = int64(i)
		} else {
			vals[i] = names[i]
		}
	}
	b.Run("map", func(b *testing.B) {
		b.ReportAllocs()
		var sink int
		for b.Loop() {
			m := make(map[string]Value, len(names))
			for i, name := range names {
				m[name] = vals[i]
			}
			for _, name := range names {
				if _, ok := m[name]; ok {
					sink++
				}
			}
		}
		_ = sink
	})
	b.Run("row", func(b *testing.B) {
		b.ReportAllocs()
		l := mustLayout(b, names...)
		var p RowPool
		var sink int
		for b.Loop() {
			br := p.Rows()
			r := br.Of(l)
			for i := range vals {
				r.SetAt(i, vals[i])
			}
			for i := range r.Width() {
				if _, _, ok := r.At(i); ok {
					sink++
				}
			}
			br.Recycle()
		}
		_ = sink
	})
	b.Run("row-unpooled", func(b *testing.B) {
		b.ReportAllocs()
		l := mustLayout(b, names...)
		var sink int
		for b.Loop() {
			r := NewRow(l)
			for i := range vals {
				r.SetAt(i, vals[i])
			}
			for i := range r.Width() {
				if _, _, ok := r.At(i); ok {
					sink++
				}
			}
		}
		_ = sink
	})
	b.Run("row-by-name", func(b *testing.B) {
		b.ReportAllocs()
		l := mustLayout(b, names...)
		var sink int
		for b.Loop() {
			r := NewRow(l)
			for i, name := range names {
				r.Set(name, vals[i])
			}
			for _, name := range names {
				if _, ok := r.Lookup(name); ok {
					sink++
				}
			}
		}
		_ = sink
	})
}
