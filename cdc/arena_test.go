package cdc

import (
	"fmt"
	"math"
	"reflect"
	"runtime"
	"testing"
	"time"
)

// TestArena: a Value boxed in an Arena is the Value the language boxes:
// same dynamic type, equal under ==, DeepEqual, type switches, printing
// and as a map key; it stays intact after its Arena moved on to new blocks
// and was dropped, through garbage collections.
func TestArena(t *testing.T) {
	ts := time.Date(2024, 5, 1, 10, 20, 30, 123e6, time.UTC)
	var want []Value
	var got []Value
	a := new(Arena)
	for i := range 3*arenaWords + 5 { // several blocks of every kind
		n := int64(i*1000003) - 7
		s := fmt.Sprintf("s%d", i)
		pairs := [][2]Value{
			{n, a.Int64(n)},
			{int64(i % 256), a.Int64(int64(i % 256))},
			{-n, a.Int64(-n)},
			{int64(math.MinInt64), a.Int64(math.MinInt64)},
			{uint64(1<<63) + uint64(i), a.Uint64(1<<63 + uint64(i))},
			{uint64(i), a.Uint64(uint64(i))},
			{Int(1<<63 + uint64(i)), a.Int(1<<63 + uint64(i))},
			{Int(uint64(i) * 99991), a.Int(uint64(i) * 99991)},
			{float64(i) / 3, a.Float64(float64(i) / 3)},
			{math.Inf(-1), a.Float64(math.Inf(-1))},
			{s, a.String(s)},
			{"", a.String("")},
			{Decimal(s), a.Decimal(Decimal(s))},
			{Decimal(""), a.Decimal("")},
			{ts.Add(time.Duration(i)), a.Time(ts.Add(time.Duration(i)))},
			{time.Time{}, a.Time(time.Time{})},
		}
		for _, p := range pairs {
			want = append(want, p[0])
			got = append(got, p[1])
		}
	}
	a = nil
	for range 3 {
		runtime.GC()
		var junk [][]byte // reuse what a collection freed
		for range 1000 {
			junk = append(junk, make([]byte, 64))
		}
		_ = junk
	}
	keys := map[Value]int{}
	for i, w := range want {
		keys[w] = i
	}
	for i, g := range got {
		w := want[i]
		if reflect.TypeOf(g) != reflect.TypeOf(w) || g != w || !reflect.DeepEqual(g, w) || fmt.Sprintf("%#v", g) != fmt.Sprintf("%#v", w) {
			t.Fatalf("value %d: %#v (%T), want %#v (%T)", i, g, g, w, w)
		}
		if j, ok := keys[g]; !ok || want[j] != w {
			t.Fatalf("value %d: %#v is not found as a map key", i, g)
		}
		switch x := g.(type) {
		case int64:
			if x != w.(int64) {
				t.Fatal(i)
			}
		case uint64:
			if x != w.(uint64) {
				t.Fatal(i)
			}
		case float64:
			if x != w.(float64) {
				t.Fatal(i)
			}
		case string:
			if x != w.(string) {
				t.Fatal(i)
			}
		case Decimal:
			if x != w.(Decimal) {
				t.Fatal(i)
			}
		case time.Time:
			if !x.Equal(w.(time.Time)) || x.Location() != w.(time.Time).Location() {
				t.Fatal(i)
			}
		default:
			t.Fatalf("value %d: type %T", i, g)
		}
	}
}

// TestParseTextIn: ParseTextIn gives ParseText's values and errors.
func TestParseTextIn(t *testing.T) {
	a := new(Arena)
	for _, c := range []struct{ typ, s string }{
		{"int", "-12"}, {"int", "123456789"}, {"int", "x"}, {"bigint unsigned", "18446744073709551615"},
		{"bigint unsigned", "42"}, {"float", "1.5"}, {"double", "-2.25e10"}, {"double", "?"},
		{"decimal(12,2)", "1299.5"}, {"decimal(12,2)", "1e3"}, {"datetime(3)", "2024-05-01 10:20:30.123"},
		{"date", "2024-02-29"}, {"datetime", "0000-00-00 00:00:00"}, {"timestamp", "2024-05-01T10:20:30Z"},
		{"varchar(8)", "abc"}, {"varchar(8)", ""}, {"time", "-838:59:59"}, {"json", `{"a":1}`},
		{"set('a','b')", "a,b"}, {"blob", "\x00\xff"}, {"year", "2024"}, {"bit(8)", "255"},
	} {
		col := ParseColumnType("c", c.typ)
		want, wantErr := ParseText(&col, c.s)
		got, err := ParseTextIn(a, &col, c.s)
		if fmt.Sprint(err) != fmt.Sprint(wantErr) || !reflect.DeepEqual(got, want) || fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", want) {
			t.Errorf("%s %q: %#v (%v), want %#v (%v)", c.typ, c.s, got, err, want, wantErr)
		}
	}
}
