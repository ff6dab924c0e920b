package cdc

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseColumnType(t *testing.T) {
	cases := []struct {
		typ  string
		want Column
	}{
		{"bigint(20) unsigned", Column{Kind: KindInt, Unsigned: true, IntBytes: 8, Precision: -1}},
		{"tinyint(1)", Column{Kind: KindInt, IntBytes: 1, Precision: -1}},
		{"int", Column{Kind: KindInt, IntBytes: 4, Precision: -1}},
		{"decimal(12,2)", Column{Kind: KindDecimal, Precision: 2}},
		{"decimal(10)", Column{Kind: KindDecimal, Precision: 0}},
		{"datetime(3)", Column{Kind: KindDateTime, Precision: 3}},
		{"timestamp", Column{Kind: KindTimestamp, Precision: 0}},
		{"time(6)", Column{Kind: KindTime, Precision: 6}},
		{"varchar(64)", Column{Kind: KindString, Precision: -1}},
		{"longblob", Column{Kind: KindBytes, Precision: -1}},
		{"json", Column{Kind: KindJSON, Precision: -1}},
		{"enum('a','b''c')", Column{Kind: KindEnum, Precision: -1, Elems: []string{"a", "b'c"}}},
		{"set('x','y')", Column{Kind: KindSet, Precision: -1, Elems: []string{"x", "y"}}},
		{"bit(8)", Column{Kind: KindBit, Precision: 8}},
		{"year(4)", Column{Kind: KindYear, Precision: -1}},
		{"geometry", Column{Kind: KindBytes, Precision: -1}},
		{"mystery", Column{Kind: KindUnknown, Precision: -1}},
	}
	for _, tc := range cases {
		t.Run(tc.typ, func(t *testing.T) {
			got := ParseColumnType("c", tc.typ)
			tc.want.Name, tc.want.Type = "c", tc.typ
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseTextAndFormatTextRoundTrip(t *testing.T) {
	cases := []struct {
		typ, text string
		want      Value
	}{
		{"bigint(20) unsigned", "18446744073709551615", uint64(18446744073709551615)},
		{"bigint(20) unsigned", "42", int64(42)},
		{"int", "-7", int64(-7)},
		{"decimal(12,2)", "1234.50", Decimal("1234.50")},
		{"decimal(12,2)", "-0.10", Decimal("-0.10")},
		{"double", "0.1", 0.1},
		{"double", "1e20", 1e20},
		{"float", "1.1", float64(float32(1.1))},
		{"datetime(3)", "2024-01-02 03:04:05.120", time.Date(2024, 1, 2, 3, 4, 5, 120e6, time.UTC)},
		{"datetime", "2024-02-29 23:59:59", time.Date(2024, 2, 29, 23, 59, 59, 0, time.UTC)},
		{"datetime", "0000-00-00 00:00:00", "0000-00-00 00:00:00"},
		{"date", "2024-01-02", time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)},
		{"date", "2023-02-29", "2023-02-29"},
		{"time(1)", "-838:59:59.0", -(838*time.Hour + 59*time.Minute + 59*time.Second)},
		{"json", `{"a": 1}`, JSON(`{"a": 1}`)},
		{"set('a','b')", "a,b", Set{"a", "b"}},
		{"varchar(10)", "Zoë 🚀", "Zoë 🚀"},
		{"blob", "\x00\xff", []byte{0, 0xff}},
		{"year", "2024", int64(2024)},
		{"bit(3)", "5", int64(5)},
	}
	for _, tc := range cases {
		t.Run(tc.typ+"/"+tc.text, func(t *testing.T) {
			col := ParseColumnType("c", tc.typ)
			got, err := ParseText(&col, tc.text)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("ParseText = %#v, want %#v", got, tc.want)
			}
			if s, _ := FormatText(&col, got); s != tc.text {
				t.Fatalf("FormatText = %q, want %q", s, tc.text)
			}
		})
	}
}

func TestParseTextErrors(t *testing.T) {
	for _, tc := range []struct{ typ, text string }{
		{"int", "x"}, {"int unsigned", "-1"}, {"decimal(5,2)", "1.2.3"}, {"double", "abc"},
		{"datetime", "yesterday"}, {"time", "12:60:00"},
	} {
		col := ParseColumnType("c", tc.typ)
		if _, err := ParseText(&col, tc.text); err == nil {
			t.Errorf("ParseText(%s, %q): no error", tc.typ, tc.text)
		}
	}
}

func TestFastDateTimeAgreesWithTimeParse(t *testing.T) {
	for _, s := range []string{"2024-01-02", "2024-01-02 03:04:05", "2024-01-02 03:04:05.1",
		"2024-12-31 23:59:59.999999", "1000-01-01 00:00:00", "2000-02-29 12:00:00.000001"} {
		fast, ok := parseDateTimeFast(s)
		if !ok {
			t.Fatalf("fast path declined %q", s)
		}
		layout := "2006-01-02 15:04:05.999999999"
		if len(s) == 10 {
			layout = "2006-01-02"
		}
		slow, err := time.ParseInLocation(layout, s, time.UTC)
		if err != nil || !fast.Equal(slow) {
			t.Fatalf("%q: fast %v, slow %v (%v)", s, fast, slow, err)
		}
	}
	for _, s := range []string{"2024-13-01", "2024-02-30", "2024-01-02T03:04:05", "2024-01-02 24:00:00", "2024-01-02 03:04:05.", "0000-00-00"} {
		if _, ok := parseDateTimeFast(s); ok {
			t.Errorf("fast path accepted %q", s)
		}
	}
}

func TestNormalizeDecimal(t *testing.T) {
	for _, tc := range []struct {
		in    string
		scale int
		want  Decimal
	}{{"1234.5", 2, "1234.50"}, {"7", 2, "7.00"}, {"1.500", 2, "1.50"}, {"1.505", 2, "1.505"}, {"+3", -1, "3"}, {"1.0E10", 1, "10000000000.0"}} {
		got, err := NormalizeDecimal(tc.in, tc.scale)
		if err != nil || got != tc.want {
			t.Errorf("NormalizeDecimal(%q, %d) = %q, %v; want %q", tc.in, tc.scale, got, err, tc.want)
		}
	}
}

func TestBinlogVersionOrders(t *testing.T) {
	a := BinlogPosVersion("mysql-bin.000003", 4711)
	b := BinlogPosVersion("mysql-bin.000003", 4712)
	c := BinlogPosVersion("mysql-bin.000004", 4)
	if !(a < b && b < c) || BinlogPosVersion("nosuffix", 1) != 0 {
		t.Fatalf("versions %d %d %d", a, b, c)
	}
}

func TestFormatTemporal(t *testing.T) {
	ts := time.Date(2024, 3, 9, 7, 5, 3, 120_456_789, time.UTC)
	for _, tc := range []struct {
		kind Kind
		prec int
		want string
	}{
		{KindDate, -1, "2024-03-09"}, {KindDateTime, 0, "2024-03-09 07:05:03"}, {KindDateTime, 3, "2024-03-09 07:05:03.120"},
		{KindTimestamp, 6, "2024-03-09 07:05:03.120456"}, {KindDateTime, -1, "2024-03-09 07:05:03.120456"},
	} {
		if got := FormatDateTime(ts, tc.kind, tc.prec); got != tc.want {
			t.Errorf("FormatDateTime(%v,%d) = %q, want %q", tc.kind, tc.prec, got, tc.want)
		}
	}
	if got := FormatDateTime(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), KindDateTime, -1); got != "2024-01-01 00:00:00" {
		t.Errorf("whole second = %q", got)
	}
	for _, tc := range []struct {
		d    time.Duration
		prec int
		want string
	}{
		{-(838*time.Hour + 59*time.Minute + 59*time.Second), 0, "-838:59:59"}, {5 * time.Second, 0, "00:00:05"},
		{time.Hour + 1500*time.Millisecond, 3, "01:00:01.500"}, {time.Hour + 1500*time.Millisecond, -1, "01:00:01.5"},
	} {
		if got := FormatDuration(tc.d, tc.prec); got != tc.want {
			t.Errorf("FormatDuration(%v,%d) = %q, want %q", tc.d, tc.prec, got, tc.want)
		}
	}
}

func BenchmarkFormatDateTime(b *testing.B) {
	ts := time.Date(2024, 3, 9, 7, 5, 3, 120_000_000, time.UTC)
	for i := 0; i < b.N; i++ {
		FormatDateTime(ts, KindDateTime, 3)
	}
}

// TestDecimalBounds: a message must not choose how many digits rowsync
// writes. decimal(10,30000000000) once padded "1.5" to 30 billion zeros.
func TestDecimalBounds(t *testing.T) {
	big65 := strings.Repeat("9", 35) + "." + strings.Repeat("9", 30)
	for _, tc := range []struct {
		typ, text, want, err string
	}{
		{"decimal(10,30000000000)", "1.5", "", "scale 30000000000 exceeds MySQL's maximum of 30"},
		{"decimal(10,99999999999999999999999)", "1.5", "", "exceeds MySQL's maximum of 30"},
		{"decimal(65,31)", "1.5", "", "scale 31 exceeds"},
		{"decimal(66,2)", "1.5", "", "precision 66 exceeds MySQL's maximum of 65"},
		{"decimal(65,30)", big65, big65, ""},
		{"decimal(65,30)", "9" + big65, "", "decimal has 66 digits, more than MySQL's maximum of 65"},
		{"decimal", strings.Repeat("1", 66), "", "has 66 digits"},
		{"decimal", "0." + strings.Repeat("1", 31), "", "has 31 fraction digits, more than MySQL's maximum of 30"},
		{"decimal(65,2)", "1e300", "", "digits, more than"},
		{"decimal(10,-5)", "1.5", "1.5", ""},
	} {
		t.Run(tc.typ+" "+tc.text[:min(len(tc.text), 12)], func(t *testing.T) {
			col := ParseColumnType("d", tc.typ)
			got, err := ParseText(&col, tc.text)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, %v; want error containing %q", got, err, tc.err)
				}
				if !strings.HasPrefix(err.Error(), "column d: ") {
					t.Fatalf("error %q does not name the column", err)
				}
				return
			}
			if err != nil || got != Decimal(tc.want) {
				t.Fatalf("got %v, %v; want %s", got, err, tc.want)
			}
		})
	}
	if _, err := NormalizeDecimal("1", 1<<40); err == nil {
		t.Fatal("NormalizeDecimal accepted scale 2^40")
	}
}

func TestBinaryWidth(t *testing.T) {
	for typ, want := range map[string]int{"binary(4)": 4, "BINARY(16)": 16, "varbinary(4)": 0, "binary": 0, "blob": 0, "binary(": 0} {
		if got := BinaryWidth(typ); got != want {
			t.Errorf("BinaryWidth(%q) = %d, want %d", typ, got, want)
		}
	}
	col := ParseColumnType("b", "binary(4)")
	if got := PadBinary(&col, []byte("ab")); string(got) != "ab\x00\x00" {
		t.Errorf("PadBinary = %q", got)
	}
	blob := ParseColumnType("b", "blob")
	if got := PadBinary(&blob, []byte("ab")); string(got) != "ab" {
		t.Errorf("PadBinary(blob) = %q", got)
	}
}

// AppendText appends exactly FormatText's text after what dst holds.
func TestAppendTextMatchesFormatText(t *testing.T) {
	f32 := ParseColumnType("f", "float")
	dt3 := ParseColumnType("d", "datetime(3)")
	tm := ParseColumnType("t", "time(2)")
	ts := time.Date(2024, 3, 1, 12, 30, 45, 123456789, time.UTC)
	cases := []struct {
		col *Column
		v   Value
	}{
		{nil, "text"}, {nil, []byte("raw\x00bytes")}, {nil, int64(-42)}, {nil, uint64(1 << 63)},
		{nil, 7}, {nil, 1.5}, {nil, 1e20}, {nil, -2.5e-7}, {&f32, float64(float32(0.1))},
		{nil, Decimal("12.30")}, {nil, JSON(`{"a":1}`)}, {nil, Set{"a", "b"}}, {nil, Set{}},
		{nil, true}, {nil, false}, {&dt3, ts}, {nil, ts}, {nil, time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{&tm, -(26*time.Hour + 5*time.Second + 120*time.Millisecond)}, {nil, struct{ A int }{3}}, {nil, ""},
	}
	for _, c := range cases {
		want, wantOK := FormatText(c.col, c.v)
		got, ok := AppendText([]byte("prefix e+"), c.col, c.v)
		if ok != wantOK || string(got) != "prefix e+"+want {
			t.Errorf("AppendText(%#v) = %q, %v; want %q, %v", c.v, got, ok, "prefix e+"+want, wantOK)
		}
	}
	if got, ok := AppendText([]byte("x"), nil, nil); ok || string(got) != "x" {
		t.Errorf("AppendText(NULL) = %q, %v; want \"x\", false", got, ok)
	}
	if s, _ := FormatText(nil, 1e20); s != "1e20" {
		t.Errorf("FormatText(1e20) = %q, want 1e20", s)
	}
}

// TestFastDateTimeIsTimeDate: the fast path gives exactly time.Date's
// value (==, not only Equal) for every day of years around the edges and
// leap rules, and for random instants of every year 0000-9999.
func TestFastDateTimeIsTimeDate(t *testing.T) {
	check := func(y, mo, d, h, mi, sec, ns int, s string) {
		t.Helper()
		got, ok := parseDateTimeFast(s)
		want := time.Date(y, time.Month(mo), d, h, mi, sec, ns, time.UTC)
		if !ok || got != want {
			t.Fatalf("%q: fast %#v (%v), time.Date %#v", s, got, ok, want)
		}
	}
	for _, y := range []int{0, 1, 4, 99, 100, 399, 400, 1600, 1899, 1900, 1969, 1970, 1971, 2000, 2024, 2100, 2400, 9999} {
		for mo := 1; mo <= 12; mo++ {
			for d := 1; d <= daysIn(y, mo); d++ {
				check(y, mo, d, 0, 0, 0, 0, fmt.Sprintf("%04d-%02d-%02d", y, mo, d))
				check(y, mo, d, 23, 59, 59, 999999000, fmt.Sprintf("%04d-%02d-%02d 23:59:59.999999", y, mo, d))
			}
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for y := 0; y <= 9999; y++ {
		mo := 1 + rng.IntN(12)
		d := 1 + rng.IntN(daysIn(y, mo))
		h, mi, sec := rng.IntN(24), rng.IntN(60), rng.IntN(60)
		ns := rng.IntN(1000) * 1000000
		check(y, mo, d, h, mi, sec, ns, fmt.Sprintf("%04d-%02d-%02d %02d:%02d:%02d.%03d", y, mo, d, h, mi, sec, ns/1000000))
		check(y, mo, d, h, mi, sec, 0, fmt.Sprintf("%04d-%02d-%02d %02d:%02d:%02d", y, mo, d, h, mi, sec))
	}
	for _, s := range []string{"2024-0a-01", "2024-01-0/", "20:4-01-01", "2024-01-01 1:-00:00", "2024-01-01 00:00:00.12a", "2023-02-29 00:00:00", "1900-02-29"} {
		if _, ok := parseDateTimeFast(s); ok {
			t.Errorf("fast path accepted %q", s)
		}
	}
}

func BenchmarkParseDateTime(b *testing.B) {
	for b.Loop() {
		if _, err := ParseDateTime("2024-05-01 10:20:30.123"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestShortInt: the integer fast path gives strconv's values wherever it
// answers, and answers for every plain integer of up to 18 digits.
func TestShortInt(t *testing.T) {
	var cases []string
	for _, s := range []string{"", "-", "+", "+1", "-0", "0", "00", "007", "-007", "1_000", " 1", "1 ", "1e3", "0x10", "--1", "-+1",
		"999999999999999999", "-999999999999999999", "1000000000000000000", "9223372036854775807", "-9223372036854775808",
		"18446744073709551615", "18446744073709551616", "١٢", "1\x00", ":", "/"} {
		cases = append(cases, s)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		b := make([]byte, rng.IntN(21))
		for i := range b {
			b[i] = "0123456789-+/:a"[rng.IntN(15)]
			if rng.IntN(4) > 0 {
				b[i] = '0' + byte(rng.IntN(10))
			}
		}
		cases = append(cases, string(b))
	}
	for _, s := range cases {
		for _, signed := range []bool{true, false} {
			var want int64
			var err error
			if signed {
				want, err = strconv.ParseInt(s, 10, 64)
			} else {
				var u uint64
				u, err = strconv.ParseUint(s, 10, 64)
				want = int64(u)
				if u > math.MaxInt64 {
					err = strconv.ErrRange // not the fast path's to answer
				}
			}
			got, ok := ShortInt(s, signed)
			if ok && (err != nil || got != want) {
				t.Fatalf("ShortInt(%q, %v) = %d, strconv %d, %v", s, signed, got, want, err)
			}
			digits := strings.TrimPrefix(s, "-")
			plain := len(digits) > 0 && len(digits) <= 18 && strings.Trim(digits, "0123456789") == "" && (signed || digits == s)
			if plain != ok {
				t.Fatalf("ShortInt(%q, %v): ok %v", s, signed, ok)
			}
		}
	}
}

// TestAppendDateTimeCalendar: AppendDateTime's own calendar arithmetic
// writes what time.Format writes, on every day of four centuries around
// 1970 (leap years, century years, 2000), at times and zones that cross a
// day's bounds, and out to the years it hands to time.Format.
func TestAppendDateTimeCalendar(t *testing.T) {
	zone := time.FixedZone("x", -7*3600-30*60)
	check := func(ts time.Time) {
		t.Helper()
		want := ts.UTC().Format("2006-01-02 15:04:05.000000")
		if got := string(AppendDateTime(nil, ts, KindDateTime, 6)); got != want {
			t.Fatalf("AppendDateTime(%v) = %q, want %q", ts, got, want)
		}
		if got := string(AppendDateTime(nil, ts, KindDate, -1)); got != want[:10] {
			t.Fatalf("AppendDateTime(%v, date) = %q, want %q", ts, got, want[:10])
		}
	}
	start := time.Date(1800, 1, 1, 0, 0, 0, 0, time.UTC)
	for d := range 400 * 366 {
		day := start.AddDate(0, 0, d)
		check(day)
		check(day.Add(-time.Nanosecond))
		check(day.Add(23*time.Hour + 59*time.Minute + 59*time.Second + 999_999_000).In(zone))
	}
	for _, y := range []int{0, 1, 4, 100, 400, 1000, 1582, 1969, 1970, 9999} {
		for _, md := range [][2]int{{1, 1}, {2, 28}, {2, 29}, {3, 1}, {12, 31}} {
			check(time.Date(y, time.Month(md[0]), md[1], 12, 30, 45, 123_456_000, time.UTC))
		}
	}
	for _, ts := range []time.Time{time.Date(-1, 12, 31, 23, 59, 59, 0, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)} {
		if got, want := string(AppendDateTime(nil, ts, KindDateTime, 0)), ts.Format("2006-01-02 15:04:05"); got != want {
			t.Fatalf("AppendDateTime(%v) = %q, want %q", ts, got, want)
		}
	}
}

// TestAppendDateTimeFraction: the fraction as FormatDateTime always wrote
// it: prec digits (at most 6), or with prec < 0 the digits needed, none
// for a whole second and one "0" for less than a microsecond.
func TestAppendDateTimeFraction(t *testing.T) {
	base := time.Date(2024, 3, 9, 7, 5, 3, 0, time.UTC)
	for _, tc := range []struct {
		ns, prec int
		want     string
	}{
		{0, -1, ""}, {500, -1, ".0"}, {1000, -1, ".000001"}, {120_000_000, -1, ".12"}, {999_999_999, -1, ".999999"},
		{0, 0, ""}, {120_456_789, 0, ""}, {120_456_789, 1, ".1"}, {120_456_789, 3, ".120"}, {0, 3, ".000"},
		{120_456_789, 6, ".120456"}, {120_456_789, 9, ".120456"},
	} {
		want := "2024-03-09 07:05:03" + tc.want
		if got := string(AppendDateTime(nil, base.Add(time.Duration(tc.ns)), KindDateTime, tc.prec)); got != want {
			t.Errorf("ns %d prec %d: %q, want %q", tc.ns, tc.prec, got, want)
		}
	}
}
