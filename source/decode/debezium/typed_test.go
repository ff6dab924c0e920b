package debezium

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/source/decode"
)

// TestTyped covers the schemaless encodings of every column kind and mode,
// and the values that contradict the column (an error naming why).
func TestTyped(t *testing.T) {
	col := func(typ string) *cdc.Column { c := cdc.ParseColumnType("c", typ); return &c }
	jsonCol := col("longtext")
	jsonCol.Kind = cdc.KindJSON
	modes := func(dec, tm, bin string) decode.DebeziumModes {
		return decode.DebeziumModes{Decimal: dec, Time: tm, Binary: bin}
	}
	utc := func(s string) time.Time { t, _ := time.Parse("2006-01-02 15:04:05.999999", s); return t }
	for _, tc := range []struct {
		name string
		col  *cdc.Column
		m    decode.DebeziumModes
		raw  string
		want cdc.Value
		err  string
	}{
		{"null", col("int"), modes("", "", ""), `null`, nil, ""},
		{"int", col("int(11)"), modes("", "", ""), `-7`, int64(-7), ""},
		{"tinyint(1) boolean", col("tinyint(1)"), modes("", "", ""), `true`, int64(1), ""},
		{"bigint unsigned long mode", col("bigint(20) unsigned"), modes("", "", ""), `-1`, uint64(18446744073709551615), ""},
		{"bigint unsigned precise", col("bigint(20) unsigned"), modes("", "", ""), `"AP//////////"`, uint64(18446744073709551615), ""},
		{"int unsigned negative", col("int(10) unsigned"), modes("", "", ""), `-1`, nil, "negative in an unsigned column"},
		{"int from text", col("int"), modes("", "", ""), `"7"`, nil, "not an integer"},
		{"float", col("float"), modes("", "", ""), `3.14`, float64(float32(3.14)), ""},
		{"double", col("double"), modes("", "", ""), `0.30000000000000004`, 0.30000000000000004, ""},
		{"double from text", col("double"), modes("", "", ""), `"x"`, nil, "not a number"},
		{"decimal precise", col("decimal(12,2)"), modes("", "", ""), `"AeI6"`, cdc.Decimal("1234.50"), ""},
		{"decimal precise negative", col("decimal(5,0)"), modes("precise", "", ""), `"1g=="`, cdc.Decimal("-42"), ""},
		{"decimal string", col("decimal(12,2)"), modes("string", "", ""), `"1234.5"`, cdc.Decimal("1234.50"), ""},
		{"decimal double", col("decimal(12,2)"), modes("double", "", ""), `1234.5`, cdc.Decimal("1234.50"), ""},
		{"decimal double whatever the mode", col("decimal(12,2)"), modes("precise", "", ""), `1e3`, cdc.Decimal("1000.00"), ""},
		{"decimal not base64", col("decimal(12,2)"), modes("precise", "", ""), `"12.50"`, nil, "not base64"},
		{"decimal string not a number", col("decimal(12,2)"), modes("string", "", ""), `"abc"`, nil, "decimal"},
		{"decimal beyond 65 digits", col("decimal(12,2)"), modes("", "", ""), `"` + strings.Repeat("A", 60) + `"`, nil, "beyond MySQL's"},
		{"date", col("date"), modes("", "", ""), `19782`, utc("2024-02-29 00:00:00"), ""},
		{"date as text", col("date"), modes("", "", ""), `"2024-02-29"`, nil, "not an int64"},
		{"datetime(3) ms", col("datetime(3)"), modes("", "", ""), `1704164645678`, utc("2024-01-02 03:04:05.678"), ""},
		{"datetime(6) µs", col("datetime(6)"), modes("", "", ""), `1704164645123456`, utc("2024-01-02 03:04:05.123456"), ""},
		{"datetime(6) connect ms", col("datetime(6)"), modes("", "connect", ""), `1704164645123`, utc("2024-01-02 03:04:05.123"), ""},
		{"timestamp zoned", col("timestamp(6)"), modes("", "", ""), `"2024-03-04T10:00:00.123456+05:00"`, utc("2024-03-04 05:00:00.123456"), ""},
		{"timestamp zero (epoch, below the type's range)", col("timestamp"), modes("", "", ""), `"1970-01-01T00:00:00Z"`, "0000-00-00 00:00:00", ""},
		{"timestamp(3) zero", col("timestamp(3)"), modes("", "", ""), `"1970-01-01T00:00:00.000Z"`, "0000-00-00 00:00:00.000", ""},
		{"timestamp one second after the epoch", col("timestamp"), modes("", "", ""), `"1970-01-01T00:00:01Z"`, utc("1970-01-01 00:00:01"), ""},
		{"date epoch stays a date (zero dates are not told apart)", col("date"), modes("", "", ""), `0`, utc("1970-01-01 00:00:00"), ""},
		{"geometry struct rejected", col("point"), modes("", "", ""), `{"wkb":"AQEAAAAAAAAAAADwPwAAAAAAAABA","srid":null}`, nil, "geometry struct"},
		{"timestamp as number", col("timestamp"), modes("", "", ""), `1709528400000`, nil, "not a string"},
		{"time µs", col("time"), modes("", "", ""), `-45296000000`, -(12*time.Hour + 34*time.Minute + 56*time.Second), ""},
		{"time(3) adaptive ms", col("time(3)"), modes("", "adaptive", ""), `45296780`, 12*time.Hour + 34*time.Minute + 56780*time.Millisecond, ""},
		{"time(6) adaptive µs", col("time(6)"), modes("", "adaptive", ""), `1`, time.Microsecond, ""},
		{"time connect ms", col("time(6)"), modes("", "connect", ""), `1`, time.Millisecond, ""},
		{"blob bytes", col("blob"), modes("", "", ""), `"AAEC/w=="`, []byte{0, 1, 2, 255}, ""},
		{"blob url-safe", col("blob"), modes("", "", "base64-url-safe"), `"AAEC_w=="`, []byte{0, 1, 2, 255}, ""},
		{"blob hex", col("blob"), modes("", "", "hex"), `"000102ff"`, []byte{0, 1, 2, 255}, ""},
		{"blob bad hex", col("blob"), modes("", "", "hex"), `"zz"`, nil, "not hex"},
		{"binary(4) padded", col("binary(4)"), modes("", "", ""), `"YWI="`, []byte("ab\x00\x00"), ""},
		{"bit(1)", col("bit(1)"), modes("", "", ""), `true`, int64(1), ""},
		{"bit(10)", col("bit(10)"), modes("", "", ""), `"qgI="`, int64(682), ""},
		{"bit too wide", col("bit(10)"), modes("", "", ""), `"AAAAAAAAAAAA"`, nil, "more than 64 bits"},
		{"year", col("year(4)"), modes("", "", ""), `2024`, int64(2024), ""},
		{"enum", col("enum('a','b')"), modes("", "", ""), `"b"`, "b", ""},
		{"set", col("set('a','b','c')"), modes("", "", ""), `"a,c"`, cdc.Set{"a", "c"}, ""},
		{"empty set", col("set('a','b','c')"), modes("", "", ""), `""`, cdc.Set{}, ""},
		{"json", jsonCol, modes("", "", ""), `"{\"k\":[1,2]}"`, cdc.JSON(`{"k": [1, 2]}`), ""},
		{"varchar", col("varchar(10)"), modes("", "", ""), `"héllo"`, "héllo", ""},
		{"varchar from number", col("varchar(10)"), modes("", "", ""), `12`, nil, "not a string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := typed(tc.col, json.RawMessage(tc.raw), &tc.m)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v (%T), want %#v (%T)", got, got, tc.want, tc.want)
			}
		})
	}
}
