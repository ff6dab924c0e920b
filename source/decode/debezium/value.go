package debezium

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/source/decode/internal/jsonvalue"
)

// convert turns one row value into the canonical cdc.Value. f is the
// field's Connect schema, nil when the message has none.
func convert(f *field, raw json.RawMessage) (cdc.Value, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, fmt.Errorf("empty value")
	}
	if raw[0] == 'n' {
		return nil, nil
	}
	if f == nil {
		return untyped(raw)
	}
	switch f.Name {
	case nameDecimal:
		b, err := bytesValue(raw)
		if err != nil {
			return nil, err
		}
		scale, err := strconv.Atoi(f.Parameters[paramScale])
		if err != nil || scale < 0 || scale > cdc.MaxDecimalScale {
			return nil, fmt.Errorf("decimal: scale parameter %q is not in MySQL's range 0..%d", f.Parameters[paramScale], cdc.MaxDecimalScale)
		}
		n, err := unscaled(b)
		if err != nil {
			return nil, err
		}
		if scale == 0 && strings.Contains(strings.ToUpper(f.Parameters[paramSourceType]), "INT") && n.IsUint64() {
			// BIGINT UNSIGNED with bigint.unsigned.handling.mode=precise
			return cdc.Int(n.Uint64()), nil
		}
		return checkedDecimal(formatUnscaled(n, scale))
	case nameVarDecimal:
		var v struct {
			Scale int             `json:"scale"`
			Value json.RawMessage `json:"value"`
		}
		if err := json.Unmarshal(raw, &v); err != nil || v.Value == nil {
			return nil, fmt.Errorf("variable scale decimal: %.60q is not {scale, value}", raw)
		}
		if v.Scale < 0 || v.Scale > cdc.MaxDecimalScale {
			return nil, fmt.Errorf("variable scale decimal: scale %d is not in MySQL's range 0..%d", v.Scale, cdc.MaxDecimalScale)
		}
		b, err := bytesValue(v.Value)
		if err != nil {
			return nil, err
		}
		n, err := unscaled(b)
		if err != nil {
			return nil, err
		}
		return checkedDecimal(formatUnscaled(n, v.Scale))
	case nameDate, nameConnectDate:
		return days(raw)
	case nameTimestamp, nameConnectTS:
		n, err := integer(raw)
		if err != nil {
			return nil, err
		}
		return time.UnixMilli(n).UTC(), nil
	case nameMicroTS:
		n, err := integer(raw)
		if err != nil {
			return nil, err
		}
		return time.UnixMicro(n).UTC(), nil
	case nameNanoTS:
		n, err := integer(raw)
		if err != nil {
			return nil, err
		}
		return time.Unix(0, n).UTC(), nil
	case nameZonedTS:
		s, err := jsonvalue.String(raw)
		if err != nil {
			return nil, err
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return nil, fmt.Errorf("zoned timestamp %q: %w", s, err)
		}
		return t.UTC(), nil
	case nameTime, nameConnectTime, nameMicroTime, nameNanoTime:
		n, err := integer(raw)
		if err != nil {
			return nil, err
		}
		unit := map[string]time.Duration{nameTime: time.Millisecond, nameConnectTime: time.Millisecond,
			nameMicroTime: time.Microsecond, nameNanoTime: 1}[f.Name]
		if n > math.MaxInt64/int64(unit) || n < math.MinInt64/int64(unit) {
			return nil, fmt.Errorf("time %d out of range", n)
		}
		return time.Duration(n) * unit, nil
	case nameJSON:
		s, err := jsonvalue.String(raw)
		if err != nil {
			return nil, err
		}
		return jsonText(s)
	case nameEnumSet:
		s, err := jsonvalue.String(raw)
		if err != nil {
			return nil, err
		}
		return setText(s), nil
	case nameBits:
		return bits(raw)
	case nameGeometry, namePoint, nameGeography:
		var g struct {
			WKB json.RawMessage `json:"wkb"`
		}
		if err := json.Unmarshal(raw, &g); err != nil || g.WKB == nil {
			return nil, fmt.Errorf("geometry: %.60s has no wkb", raw)
		}
		return bytesValue(g.WKB)
	}
	switch f.Type {
	case "int8", "int16", "int32", "int64":
		if raw[0] == 't' || raw[0] == 'f' {
			return boolean(raw)
		}
		s := string(raw)
		if v, ok := jsonvalue.Integer(s); ok {
			if n, neg := v.(int64); neg && n < 0 && f.Type == "int64" &&
				strings.Contains(strings.ToUpper(f.Parameters[paramSourceType]), "UNSIGNED") {
				// BIGINT UNSIGNED in the default "long" mode wraps above 2^63-1
				return cdc.Int(uint64(n)), nil
			}
			return v, nil
		}
		return nil, fmt.Errorf("%.40s is not an integer", raw)
	case "float", "double", "float32", "float64":
		if !jsonvalue.IsNumber(raw) {
			return nil, fmt.Errorf("%.40s is not a number", raw)
		}
		bits := 64
		if f.Type == "float" || f.Type == "float32" {
			bits = 32
		}
		x, err := strconv.ParseFloat(string(raw), bits)
		if err != nil {
			return nil, fmt.Errorf("%.40s is not a number", raw)
		}
		return x, nil
	case "boolean":
		return boolean(raw)
	case "string":
		if raw[0] != '"' {
			return nil, fmt.Errorf("%.40s is not a string", raw)
		}
		return jsonvalue.String(raw)
	case "bytes":
		return bytesValue(raw)
	}
	// struct, array, map without a known name
	return jsonvalue.JSON(raw)
}

// untyped types a value of a schemaless message:
//
//	string           string (ZonedTimestamp text, Enum labels, EnumSet text,
//	                 JSON text and base64 DECIMAL/BLOB/BIT stay text)
//	integer number   int64, uint64 above math.MaxInt64 (DATE days,
//	                 Timestamp ms and MicroTime µs stay numbers)
//	other number     float64 (Debezium writes FLOAT/DOUBLE so; DECIMAL only
//	                 in decimal.handling.mode=double)
//	true / false     int64 1 / 0
//	object / array   cdc.JSON, compact (geometry structs)
func untyped(raw json.RawMessage) (cdc.Value, error) {
	switch raw[0] {
	case '"':
		return jsonvalue.String(raw)
	case 't', 'f':
		return boolean(raw)
	case '{', '[':
		return jsonvalue.JSON(raw)
	}
	if !jsonvalue.IsNumber(raw) {
		return nil, fmt.Errorf("%.40s is not a JSON value", raw)
	}
	if v, ok := jsonvalue.Integer(string(raw)); ok {
		return v, nil
	}
	x, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return nil, fmt.Errorf("%.40s is out of range", raw)
	}
	return x, nil
}

func boolean(raw json.RawMessage) (cdc.Value, error) {
	switch string(raw) {
	case "true":
		return int64(1), nil
	case "false":
		return int64(0), nil
	}
	return nil, fmt.Errorf("%.40s is not a boolean", raw)
}

// bytesValue decodes Connect "bytes": a base64 JSON string.
func bytesValue(raw json.RawMessage) ([]byte, error) {
	s, err := jsonvalue.String(raw)
	if err != nil {
		return nil, err
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("bytes value is not base64: %w", err)
	}
	return b, nil
}

func integer(raw json.RawMessage) (int64, error) {
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%.40s is not an int64", raw)
	}
	return n, nil
}

// unscaled reads a big-endian two's-complement integer.
// maxUnscaledBytes is the longest two's-complement integer a DECIMAL of
// MySQL's 65 digits needs (10^65 < 2^216, plus the sign bit).
const maxUnscaledBytes = 28

func unscaled(b []byte) (*big.Int, error) {
	if len(b) > maxUnscaledBytes {
		return nil, fmt.Errorf("decimal: unscaled value of %d bytes is beyond MySQL's %d digits", len(b), cdc.MaxDecimalPrecision)
	}
	n := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(len(b))*8))
	}
	return n, nil
}

func checkedDecimal(s string) (cdc.Value, error) {
	if err := cdc.CheckDecimal(cdc.Decimal(s)); err != nil {
		return nil, err
	}
	return cdc.Decimal(s), nil
}

// formatUnscaled prints n×10^-scale with exactly scale fraction digits, as
// MySQL prints a DECIMAL(p,scale).
func formatUnscaled(n *big.Int, scale int) string {
	neg := n.Sign() < 0
	digits := new(big.Int).Abs(n).String()
	if scale > 0 {
		if len(digits) <= scale {
			digits = strings.Repeat("0", scale-len(digits)+1) + digits
		}
		digits = digits[:len(digits)-scale] + "." + digits[len(digits)-scale:]
	}
	if neg {
		return "-" + digits
	}
	return digits
}

// days reads an io.debezium.time.Date: days since the epoch.
func days(raw json.RawMessage) (cdc.Value, error) {
	n, err := integer(raw)
	if err != nil {
		return nil, err
	}
	if n > 1e8 || n < -1e8 {
		return nil, fmt.Errorf("date: %d days out of range", n)
	}
	return time.Unix(n*86400, 0).UTC(), nil
}

// setText reads an EnumSet: comma-separated labels, "" for the empty set.
func setText(s string) cdc.Set {
	if s == "" {
		return cdc.Set{}
	}
	return cdc.Set(strings.Split(s, ","))
}

// bits reads io.debezium.data.Bits: base64 of little-endian bytes.
func bits(raw json.RawMessage) (cdc.Value, error) {
	b, err := bytesValue(raw)
	if err != nil {
		return nil, err
	}
	if len(b) > 8 {
		return nil, fmt.Errorf("bits: %d bytes is more than 64 bits", len(b))
	}
	var u uint64
	for i := len(b) - 1; i >= 0; i-- { // little-endian
		u = u<<8 | uint64(b[i])
	}
	return cdc.Int(u), nil
}

// imageRow reads a before/after object into a row from rows, typing each
// member with conv, which returns the row's key for the member (a name it
// already holds, so a known column costs no string) and its value; JSON
// null gives a nil Row. With a layout (the schema's fields, which
// Debezium lists in that order) the row is of it and a member in its
// field's place is set by position, any other by name (a member the
// layout lacks is added after its columns, a repeated one keeps its last
// value); without one, n sizes the row.
func imageRow(raw json.RawMessage, rows *cdc.BatchRows, layout *cdc.Layout, n int,
	conv func(name []byte, v []byte) (string, cdc.Value, error)) (*cdc.Row, error) {
	if raw == nil || string(raw) == "null" {
		return nil, nil
	}
	var row *cdc.Row
	if layout != nil {
		row = rows.Of(layout)
	} else {
		row = rows.Get(n)
	}
	names, j := layout.Names(), 0
	err := jsonvalue.EachMember(raw, func(name, v []byte) error {
		k, val, err := conv(name, v)
		if err != nil {
			return err
		}
		if j < len(names) && names[j] == k {
			row.SetAt(j, val)
		} else {
			row.Set(k, val)
		}
		j++
		return nil
	})
	if err != nil {
		return nil, err
	}
	return row, nil
}
