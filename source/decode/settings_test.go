package decode

import (
	"strings"
	"testing"
	"time"
)

func TestSettings(t *testing.T) {
	for _, tc := range []struct {
		tz     string
		offset int // seconds east of UTC on 2024-01-01
		err    string
	}{
		{"", 0, ""},
		{"UTC", 0, ""},
		{"+08:00", 8 * 3600, ""},
		{"-03:30", -(3*3600 + 1800), ""},
		{"Asia/Shanghai", 8 * 3600, ""},
		{"Mars/Base", 0, `time_zone: unknown zone "Mars/Base"`},
		{"+8", 0, `time_zone: "+8" is not an offset like +08:00`},
	} {
		t.Run(tc.tz, func(t *testing.T) {
			s := Settings{TimeZone: tc.tz}
			err := s.Validate()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			loc, _ := s.Location()
			if _, off := time.Date(2024, 1, 1, 0, 0, 0, 0, loc).Zone(); off != tc.offset {
				t.Errorf("offset %d, want %d", off, tc.offset)
			}
		})
	}
	t.Run("debezium modes", func(t *testing.T) {
		err := Settings{Debezium: DebeziumModes{Decimal: "exact", Time: "connect", Binary: "base32"}}.Validate()
		if err == nil || !strings.Contains(err.Error(), `debezium.decimal_handling_mode: unknown "exact"`) ||
			!strings.Contains(err.Error(), `debezium.binary_handling_mode: unknown "base32"`) || strings.Contains(err.Error(), "time_precision") {
			t.Errorf("err = %v", err)
		}
	})
}
