package decode

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/rowsync/rowsync/cdc"
)

// EventJSON renders ev as the one-line normalized JSON that `rowsync decode`
// prints, the same for every wire format:
//
//	{"db":"shop","table":"users","op":"update","pk":{"id":1},
//	 "before":{...}|null,"after":{...}|null,"ts":"2024-05-01T10:20:30Z"|null,
//	 "pos":"mysql-bin.000003:4711"}
//
// Object keys of "pk", "before" and "after" are sorted; the top-level keys
// come in the order above. "pk" holds the key columns' values from the
// after image (the before image for a delete) and is null when the event
// names no key columns. Values render by Go type:
//
//	nil                  null
//	int64, uint64        JSON number (uint64 exact, never rounded)
//	float64              JSON number in MySQL's shortest text; NaN/Inf as a string
//	cdc.Decimal          JSON string, exact ("1234.50")
//	string               JSON string; {"$base64":...} when not valid UTF-8
//	[]byte               {"$base64":"<standard base64>"}
//	time.Time            JSON string, MySQL text for the column ("2024-05-01 10:20:30.000")
//	time.Duration        JSON string, MySQL TIME text ("-838:59:59")
//	cdc.JSON             the JSON document embedded as is (a string if it is not valid JSON)
//	cdc.Set              JSON array of labels
//
// "ts" is ev.Commit in RFC 3339 UTC (with fraction when non-zero).
func EventJSON(ev cdc.Event) ([]byte, error) {
	cols := newColumnIndex(ev.Columns)
	b := make([]byte, 0, 256)
	b = append(b, `{"db":`...)
	b = appendString(b, ev.DB)
	b = append(b, `,"table":`...)
	b = appendString(b, ev.Table)
	b = append(b, `,"op":`...)
	b = appendString(b, ev.Op.String())
	b = append(b, `,"pk":`...)
	if len(ev.PK) == 0 {
		b = append(b, "null"...)
	} else {
		img := ev.Image()
		pk := new(cdc.Row)
		for _, c := range ev.PK {
			pk.Set(c, img.Get(c))
		}
		var err error
		if b, err = appendRow(b, cols, pk); err != nil {
			return nil, fmt.Errorf("pk: %w", err)
		}
	}
	var err error
	b = append(b, `,"before":`...)
	if b, err = appendRow(b, cols, ev.Before); err != nil {
		return nil, fmt.Errorf("before: %w", err)
	}
	b = append(b, `,"after":`...)
	if b, err = appendRow(b, cols, ev.After); err != nil {
		return nil, fmt.Errorf("after: %w", err)
	}
	b = append(b, `,"ts":`...)
	if ev.Commit.IsZero() {
		b = append(b, "null"...)
	} else {
		b = append(b, '"')
		b = ev.Commit.UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}
	b = append(b, `,"pos":`...)
	b = appendString(b, ev.Pos.Text)
	b = append(b, '}')
	return b, nil
}

// columnIndex finds an event's column by name. Wide rows get a map, so
// rendering stays linear in the number of columns (a 40,000-column record
// once took seconds through a scan per value).
type columnIndex struct {
	cols   []cdc.Column
	byName map[string]int
}

func newColumnIndex(cols []cdc.Column) columnIndex {
	ix := columnIndex{cols: cols}
	if len(cols) > 16 {
		ix.byName = make(map[string]int, len(cols))
		for i := range cols {
			if _, dup := ix.byName[cols[i].Name]; !dup {
				ix.byName[cols[i].Name] = i
			}
		}
	}
	return ix
}

func (ix columnIndex) get(name string) *cdc.Column {
	if ix.byName != nil {
		if i, ok := ix.byName[name]; ok {
			return &ix.cols[i]
		}
		return nil
	}
	for i := range ix.cols {
		if ix.cols[i].Name == name {
			return &ix.cols[i]
		}
	}
	return nil
}

func appendRow(b []byte, cols columnIndex, row *cdc.Row) ([]byte, error) {
	if row == nil {
		return append(b, "null"...), nil
	}
	keys := make([]string, 0, row.Len())
	for k := range row.All() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		var err error
		if b, err = appendValue(b, cols.get(k), row.Get(k)); err != nil {
			return nil, fmt.Errorf("column %s: %w", k, err)
		}
	}
	return append(b, '}'), nil
}

func appendValue(b []byte, col *cdc.Column, v cdc.Value) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case uint64:
		return strconv.AppendUint(b, x, 10), nil
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case float64:
		s, _ := cdc.FormatText(col, x)
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return appendString(b, s), nil
		}
		return append(b, s...), nil
	case string:
		if !utf8.ValidString(x) {
			return appendBase64(b, []byte(x)), nil // keep the bytes, not U+FFFD
		}
		return appendString(b, x), nil
	case cdc.Decimal:
		return appendString(b, string(x)), nil
	case []byte:
		return appendBase64(b, x), nil
	case cdc.JSON:
		if buf, err := compactJSON(string(x)); err == nil {
			return append(b, buf...), nil
		}
		return appendString(b, string(x)), nil
	case cdc.Set:
		b = append(b, '[')
		for i, s := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, s)
		}
		return append(b, ']'), nil
	case time.Time, time.Duration:
		s, _ := cdc.FormatText(col, x)
		return appendString(b, s), nil
	}
	s, _ := cdc.FormatText(col, v)
	return appendString(b, s), nil
}

// compactJSON removes insignificant white space so the line stays one line.
func compactJSON(s string) ([]byte, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(s)); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func appendBase64(b, x []byte) []byte {
	b = append(b, `{"$base64":"`...)
	b = base64.StdEncoding.AppendEncode(b, x)
	return append(b, `"}`...)
}

// appendString appends s as a JSON string (RFC 8259): quotes, backslashes
// and control characters escaped, invalid UTF-8 as U+FFFD, everything else
// (HTML characters included) as is, so the line is always valid JSON.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += n
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
