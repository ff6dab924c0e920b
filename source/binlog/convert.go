package binlog

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/rowsync/rowsync/cdc"
)

// convert turns a value as go-mysql decodes it (ParseTime on, UseDecimal
// off, so DECIMAL, DATE and TIME arrive as text; unsigned integers as
// uint8..uint64) into the cdc.Value for col.
// Text goes through the cdc helpers, the one place text becomes typed.
func convert(col *cdc.Column, v any, binLen int) (cdc.Value, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case int8:
		return convertInt(nil, col, int64(x))
	case int16:
		return convertInt(nil, col, int64(x))
	case int32:
		return convertInt(nil, col, int64(x))
	case int64:
		if col.Kind == cdc.KindInt && !col.Unsigned {
			return v, nil // already the canonical type: no new boxing
		}
		return convertInt(nil, col, x)
	case int: // YEAR
		return convertInt(nil, col, int64(x))
	// go-mysql gives columns the table map marks unsigned as uint8..uint64
	// (the MINIMAL and FULL row metadata carry signedness); without that
	// metadata they arrive signed and col.Unsigned reinterprets them.
	case uint8:
		return convertUint(nil, col, uint64(x))
	case uint16:
		return convertUint(nil, col, uint64(x))
	case uint32:
		return convertUint(nil, col, uint64(x))
	case uint64:
		return convertUint(nil, col, x)
	case float32:
		return float64(x), nil
	case float64:
		return v, nil
	case time.Time:
		if col.Kind != cdc.KindDate && x.Location() == time.UTC {
			return v, nil // no new boxing
		}
		return convertTime(nil, col, x)
	case string:
		switch {
		case col.Kind == cdc.KindString && col.Charset == "", col.Kind == cdc.KindUnknown, col.Kind == cdc.KindEnum:
			return v, nil // no new boxing
		}
		return convertString(nil, col, x, binLen)
	case []byte:
		return convertBytes(col, x, binLen)
	}
	return nil, fmt.Errorf("column %s: unsupported binlog value %T", col.Name, v)
}

// convertTime converts a DATETIME or TIMESTAMP read as a time.Time.
func convertTime(a *cdc.Arena, col *cdc.Column, x time.Time) (cdc.Value, error) {
	if col.Kind == cdc.KindDate {
		return a.Time(time.Date(x.Year(), x.Month(), x.Day(), 0, 0, 0, 0, time.UTC)), nil
	}
	return a.Time(x.UTC()), nil
}

// convertString converts a value go-mysql reads as text: CHAR/VARCHAR,
// DECIMAL, DATE, TIME, zero and pre-1970 DATETIMEs.
func convertString(a *cdc.Arena, col *cdc.Column, x string, binLen int) (cdc.Value, error) {
	switch col.Kind {
	case cdc.KindString:
		if col.Charset != "" {
			return toUTF8(col.Charset, x)
		}
		// go-mysql aliases strings into the event's packet buffer, which
		// is never reused; keeping the alias saves a copy per value.
		return a.String(x), nil
	case cdc.KindUnknown, cdc.KindEnum:
		return a.String(x), nil
	}
	return convertText(a, col, x, binLen)
}

// convertBytes converts a BLOB/TEXT, GEOMETRY or VECTOR value; x aliases
// the event and is copied.
func convertBytes(col *cdc.Column, x []byte, binLen int) (cdc.Value, error) {
	switch col.Kind {
	case cdc.KindBytes, cdc.KindUnknown:
		return padBinary(bytes.Clone(x), binLen), nil
	case cdc.KindJSON:
		return cdc.JSON(x), nil
	case cdc.KindString:
		if col.Charset != "" {
			return toUTF8(col.Charset, string(x))
		}
		return string(x), nil
	case cdc.KindEnum, cdc.KindSet:
		return string(x), nil
	}
	return cdc.ParseText(col, string(x))
}

func convertText(a *cdc.Arena, col *cdc.Column, s string, binLen int) (cdc.Value, error) {
	switch col.Kind {
	case cdc.KindString, cdc.KindUnknown, cdc.KindEnum:
		return a.String(s), nil
	case cdc.KindBytes:
		return padBinary([]byte(s), binLen), nil
	case cdc.KindJSON:
		return cdc.JSON(s), nil
	case cdc.KindDecimal:
		d, err := cdc.NormalizeDecimal(s, col.Precision)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", col.Name, err)
		}
		return a.Decimal(d), nil
	}
	return cdc.ParseTextIn(a, col, s)
}

func convertInt(a *cdc.Arena, col *cdc.Column, n int64) (cdc.Value, error) {
	switch col.Kind {
	case cdc.KindInt:
		if !col.Unsigned {
			return a.Int64(n), nil
		}
		switch col.IntBytes {
		case 1:
			return a.Int64(int64(uint8(n))), nil
		case 2:
			return a.Int64(int64(uint16(n))), nil
		case 3:
			return a.Int64(int64(uint32(n) & 0xffffff)), nil
		case 4:
			return a.Int64(int64(uint32(n))), nil
		}
		return a.Int(uint64(n)), nil
	case cdc.KindBit:
		return a.Int(uint64(n)), nil
	case cdc.KindEnum:
		// the binlog holds the 1-based index; 0 is the "" of an invalid value
		if n == 0 {
			return "", nil
		}
		if n > 0 && int(n) <= len(col.Elems) {
			return col.Elems[n-1], nil
		}
		return nil, fmt.Errorf("column %s: enum index %d outside %d labels", col.Name, n, len(col.Elems))
	case cdc.KindSet:
		set := cdc.Set{}
		u := uint64(n)
		for i, e := range col.Elems {
			if u&(1<<uint(i)) != 0 {
				set = append(set, e)
			}
		}
		if len(col.Elems) < 64 && u>>uint(len(col.Elems)) != 0 {
			return nil, fmt.Errorf("column %s: set bits %#x beyond %d labels", col.Name, u, len(col.Elems))
		}
		return set, nil
	case cdc.KindDecimal:
		return normalizeDecimal(a, strconv.FormatInt(n, 10), col.Precision)
	}
	return a.Int64(n), nil
}

// convertUint is convertInt for a value the binlog says is unsigned: it is
// already exact, whatever the definition says about signedness.
func convertUint(a *cdc.Arena, col *cdc.Column, u uint64) (cdc.Value, error) {
	switch col.Kind {
	case cdc.KindInt, cdc.KindBit:
		return a.Int(u), nil
	case cdc.KindDecimal:
		return normalizeDecimal(a, strconv.FormatUint(u, 10), col.Precision)
	}
	if u > math.MaxInt64 {
		return nil, fmt.Errorf("column %s: unsigned %d does not fit a %s column", col.Name, u, col.Kind)
	}
	return convertInt(a, col, int64(u))
}

// normalizeDecimal is cdc.NormalizeDecimal with the Value boxed in a.
func normalizeDecimal(a *cdc.Arena, s string, precision int) (cdc.Value, error) {
	d, err := cdc.NormalizeDecimal(s, precision)
	if err != nil {
		return nil, err
	}
	return a.Decimal(d), nil
}

func padBinary(b []byte, width int) []byte {
	if width > len(b) {
		b = append(b, make([]byte, width-len(b))...)
	}
	return b
}
