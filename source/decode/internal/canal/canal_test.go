package canal

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/rowsync/rowsync/cdc"
)

func TestValue(t *testing.T) {
	var all strings.Builder
	allBytes := make([]byte, 256)
	for i := range 256 {
		all.WriteRune(rune(i))
		allBytes[i] = byte(i)
	}
	shanghai := time.FixedZone("CST", 8*3600)
	cases := []struct {
		name, mysql string
		sqlType     int32
		text        string
		loc         *time.Location
		want        cdc.Value
		err         string
	}{
		{"bigint unsigned max", "bigint(20) unsigned", TypeDecimal, "18446744073709551615", nil, uint64(18446744073709551615), ""},
		{"bigint unsigned small", "bigint(20) unsigned", TypeBigInt, "42", nil, int64(42), ""},
		{"bigint unsigned lost flag", "bigint", TypeDecimal, "18446744073709551615", nil, uint64(18446744073709551615), ""},
		{"bigint signed min", "bigint(20)", TypeBigInt, "-9223372036854775808", nil, int64(-9223372036854775808), ""},
		{"bigint overflow", "bigint(20)", TypeBigInt, "9223372036854775808", nil, nil, "not an integer"},
		{"int unsigned raised", "int(10) unsigned", TypeBigInt, "4294967295", nil, int64(4294967295), ""},
		{"decimal scale kept", "decimal(12,2)", TypeDecimal, "1234.50", nil, cdc.Decimal("1234.50"), ""},
		{"decimal zero", "decimal(12,2)", TypeDecimal, "0.00", nil, cdc.Decimal("0.00"), ""},
		{"decimal negative", "decimal(30,10)", TypeDecimal, "-12345678901234567890.0123456789", nil, cdc.Decimal("-12345678901234567890.0123456789"), ""},
		{"decimal garbage", "decimal(12,2)", TypeDecimal, "12a", nil, nil, "not a decimal"},
		{"double exponent", "double", TypeDouble, "1.0E10", nil, 1e10, ""},
		{"double small exponent", "double", TypeDouble, "1.5E-7", nil, 1.5e-7, ""},
		{"double plain", "double", TypeDouble, "98.6", nil, 98.6, ""},
		{"float", "float", TypeReal, "0.1", nil, float64(float32(0.1)), ""},
		{"blob all bytes", "blob", TypeBlob, all.String(), nil, allBytes, ""},
		{"binary nul padded", "binary(4)", TypeBlob, "ab\x00\x00", nil, []byte("ab\x00\x00"), ""},
		{"blob not latin1 kept as utf8", "blob", TypeBlob, "张", nil, []byte("张"), ""},
		{"geometry", "geometry", TypeBlob, "\u0001\u00e9", nil, []byte{1, 0xe9}, ""},
		{"unknown type binary sqlType", "", TypeBlob, "\u00ff", nil, []byte{0xff}, ""},
		{"enum index", "enum('active','banned')", TypeInteger, "2", nil, "banned", ""},
		{"enum index zero", "enum('active','banned')", TypeInteger, "0", nil, "", ""},
		{"enum index out of range", "enum('active','banned')", TypeInteger, "3", nil, nil, "out of range"},
		{"enum label already", "enum('active','banned')", TypeVarChar, "banned", nil, "banned", ""},
		{"enum no labels", "enum", TypeInteger, "1", nil, "1", ""},
		{"set bitmask", "set('a','b','c')", TypeBit, "5", nil, cdc.Set{"a", "c"}, ""},
		{"set empty", "set('a','b','c')", TypeBit, "0", nil, cdc.Set{}, ""},
		{"set too many bits", "set('a','b')", TypeBit, "4", nil, nil, "beyond"},
		{"set labels already", "set('a','b','c')", TypeVarChar, "a,c", nil, cdc.Set{"a", "c"}, ""},
		{"bit", "bit(3)", TypeBit, "5", nil, int64(5), ""},
		{"year", "year(4)", TypeVarChar, "2024", nil, int64(2024), ""},
		{"year zero", "year(4)", TypeVarChar, "0000", nil, int64(0), ""},
		{"date", "date", TypeDate, "2024-02-29", nil, time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), ""},
		{"zero date", "date", TypeDate, "0000-00-00", nil, "0000-00-00", ""},
		{"zero datetime", "datetime", TypeTimestamp, "0000-00-00 00:00:00", nil, "0000-00-00 00:00:00", ""},
		{"zero timestamp", "timestamp", TypeTimestamp, "0000-00-00 00:00:00", shanghai, "0000-00-00 00:00:00", ""},
		{"datetime(3)", "datetime(3)", TypeTimestamp, "2024-05-01 10:20:30.123", shanghai, time.Date(2024, 5, 1, 10, 20, 30, 123e6, time.UTC), ""},
		{"timestamp in zone", "timestamp(6)", TypeTimestamp, "2024-05-01 10:20:30.000001", shanghai, time.Date(2024, 5, 1, 2, 20, 30, 1000, time.UTC), ""},
		{"timestamp utc", "timestamp", TypeTimestamp, "2024-05-01 10:20:30", nil, time.Date(2024, 5, 1, 10, 20, 30, 0, time.UTC), ""},
		{"bad date", "date", TypeDate, "yesterday", nil, nil, "not a date"},
		{"time negative big", "time", TypeTime, "-838:59:59", nil, -(838*time.Hour + 59*time.Minute + 59*time.Second), ""},
		{"json", "json", TypeVarChar, `{"a":[1,2]}`, nil, cdc.JSON(`{"a":[1,2]}`), ""},
		{"varchar emoji", "varchar(64)", TypeVarChar, "张三🚀", nil, "张三🚀", ""},
		{"boolean", "boolean", TypeTinyInt, "1", nil, int64(1), ""},
		{"unknown type", "", NoSQLType, "x", nil, "x", ""},
		{"sqltype only int", "", TypeInteger, "12", nil, int64(12), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			col := cdc.ParseColumnType("c", c.mysql)
			if c.mysql == "" && c.sqlType != NoSQLType {
				col = ColumnFromSQLType("c", c.sqlType)
			}
			loc := c.loc
			if loc == nil {
				loc = time.UTC
			}
			got, err := Value(&col, c.sqlType, c.text, loc)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !same(got, c.want) {
				t.Fatalf("got %#v, want %#v", got, c.want)
			}
		})
	}
}

func same(a, b cdc.Value) bool {
	switch x := a.(type) {
	case []byte:
		y, ok := b.([]byte)
		return ok && bytes.Equal(x, y)
	case cdc.Set:
		y, ok := b.(cdc.Set)
		return ok && strings.Join(x, "\x00") == strings.Join(y, "\x00") && len(x) == len(y)
	case time.Time:
		y, ok := b.(time.Time)
		return ok && x.Equal(y) && x.Location() == time.UTC
	}
	return a == b
}

func TestCommitTime(t *testing.T) {
	if got := CommitTime(1589373515000); !got.Equal(time.UnixMilli(1589373515000)) {
		t.Errorf("ms: %v", got)
	}
	if got := CommitTime(1589373515); !got.Equal(time.Unix(1589373515, 0)) {
		t.Errorf("seconds: %v", got)
	}
	if !CommitTime(0).IsZero() || !CommitTime(-5).IsZero() {
		t.Error("zero")
	}
}

func TestCaches(t *testing.T) {
	var in Interner
	a := in.Get([]byte("shop"))
	if b := in.Get([]byte("shop")); a != b || b != "shop" {
		t.Fatal("intern")
	}
	for i := range maxCache + 10 {
		in.Get([]byte{byte(i), byte(i >> 8)})
	}
	if len(in.m) > maxCache {
		t.Fatalf("interner grew to %d", len(in.m))
	}
	var c Cache[int]
	n := 0
	for range 3 {
		v, _ := c.Get([]byte("k"), func() (int, error) { n++; return 7, nil })
		if v != 7 {
			t.Fatal(v)
		}
	}
	if n != 1 {
		t.Fatalf("built %d times", n)
	}
}
