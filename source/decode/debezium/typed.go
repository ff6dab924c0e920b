package debezium

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/source/decode"
	"github.com/rowsync/rowsync/source/decode/internal/jsonvalue"
)

// errStale means a schemaless image did not fit the cached definition (an
// unknown column, a value that does not parse as its type): the definition
// is read again once before the message is rejected.
var errStale = errors.New("stale definition")

// typedImages types the before/after objects of a schemaless message from
// the schema source's definition of db.table, reading the definition again
// once if the message does not fit it.
func (d *Decoder) typedImages(db, table string, before, after json.RawMessage, rows *cdc.BatchRows) (b, a *cdc.Row, def *cdc.TableDef, err error) {
	for refresh := false; ; refresh = true {
		def, err = d.opts.Schemas.Table(context.Background(), db, table, refresh)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("%w: %w", decode.ErrSchemaUnavailable, err)
		}
		if def == nil {
			if !refresh {
				continue
			}
			return nil, nil, nil, errors.New("the schema source has no such table")
		}
		if b, err = d.typedRow(def, before, rows); err == nil {
			a, err = d.typedRow(def, after, rows)
		}
		if err == nil || !errors.Is(err, errStale) || refresh {
			if err != nil && errors.Is(err, errStale) {
				err = errors.Unwrap(err) // the reason, without the retry marker
			}
			return b, a, def, err
		}
	}
}

// staleError carries the reason a value did not fit, marked errStale.
type staleError struct{ err error }

func (e staleError) Error() string   { return e.err.Error() }
func (e staleError) Unwrap() error   { return e.err }
func (e staleError) Is(t error) bool { return t == errStale }

func (d *Decoder) typedRow(def *cdc.TableDef, raw json.RawMessage, rows *cdc.BatchRows) (*cdc.Row, error) {
	return imageRow(raw, rows, def.Layout(), len(def.Columns), func(name, r []byte) (string, cdc.Value, error) {
		col := def.Column(string(name))
		if col == nil {
			return "", nil, staleError{fmt.Errorf("column %s: not in the table's definition", name)}
		}
		v, err := typed(col, r, &d.opts.Debezium)
		if err != nil {
			return "", nil, staleError{fmt.Errorf("column %s (%s): %w", col.Name, col.Type, err)}
		}
		return col.Name, v, nil
	})
}

// typed converts one schemaless value to the value the binlog path gives
// for col, following the connector's encodings:
//
//	DECIMAL     precise: base64 of the unscaled integer (scale from col);
//	            string: the decimal text; double: a JSON number
//	BIGINT UNSIGNED  long mode wraps above 2^63-1 (unwrapped); precise
//	            mode is a base64 unscaled integer
//	DATE        days since the epoch
//	DATETIME    adaptive*: ms for precision 0..3, µs for 4..6; connect: ms
//	TIMESTAMP   ISO-8601 text in UTC (ZonedTimestamp)
//	TIME        adaptive_time_microseconds: µs; adaptive: ms for
//	            precision 0..3, µs for 4..6; connect: ms
//	BINARY/BLOB binary.handling.mode: base64 (bytes, base64), URL-safe
//	            base64, or hex; BINARY(n) padded with zero bytes to n as
//	            MySQL stores it
//	BIT(1)      boolean; BIT(n) base64 of the little-endian bytes
//	YEAR        integer; ENUM label; SET comma-separated labels
//	JSON        the document as text, printed as MySQL prints it
func typed(col *cdc.Column, raw json.RawMessage, m *decode.DebeziumModes) (cdc.Value, error) {
	if len(raw) == 0 {
		return nil, errors.New("empty value")
	}
	if string(raw) == "null" {
		return nil, nil
	}
	isString := raw[0] == '"'
	str := func() (string, error) {
		if !isString {
			return "", fmt.Errorf("%.40s is not a string", raw)
		}
		return jsonvalue.String(raw)
	}
	switch col.Kind {
	case cdc.KindInt, cdc.KindYear:
		if raw[0] == 't' || raw[0] == 'f' {
			return boolean(raw)
		}
		if isString && col.Unsigned && col.IntBytes == 8 {
			// bigint.unsigned.handling.mode=precise: a Connect Decimal of scale 0
			b, err := bytesValue(raw)
			if err != nil {
				return nil, err
			}
			n, err := unscaled(b)
			if err != nil {
				return nil, err
			}
			if !n.IsUint64() {
				return nil, fmt.Errorf("%s is not a BIGINT UNSIGNED", n)
			}
			return cdc.Int(n.Uint64()), nil
		}
		v, ok := jsonvalue.Integer(string(raw))
		if !ok {
			return nil, fmt.Errorf("%.40s is not an integer", raw)
		}
		if n, isInt := v.(int64); isInt && n < 0 && col.Unsigned && col.IntBytes == 8 {
			return cdc.Int(uint64(n)), nil // long mode wraps above 2^63-1
		}
		if n, isInt := v.(int64); isInt && n < 0 && col.Unsigned {
			return nil, fmt.Errorf("%d is negative in an unsigned column", n)
		}
		return v, nil
	case cdc.KindFloat, cdc.KindDouble:
		if !jsonvalue.IsNumber(raw) {
			return nil, fmt.Errorf("%.40s is not a number", raw)
		}
		bits := 64
		if col.Kind == cdc.KindFloat {
			bits = 32
		}
		x, err := strconv.ParseFloat(string(raw), bits)
		if err != nil {
			return nil, fmt.Errorf("%.40s is not a number", raw)
		}
		return x, nil
	case cdc.KindDecimal:
		return decimal(col, raw, m.Decimal)
	case cdc.KindString, cdc.KindEnum:
		return str()
	case cdc.KindSet:
		s, err := str()
		if err != nil {
			return nil, err
		}
		return setText(s), nil
	case cdc.KindJSON:
		s, err := str()
		if err != nil {
			return nil, err
		}
		return jsonText(s)
	case cdc.KindBytes:
		if raw[0] == '{' {
			// io.debezium.data.geometry.Geometry {wkb, srid}: rejected with
			// the reason rather than guessed (the binlog path's bytes for
			// it are not verified against the connector's struct)
			return nil, fmt.Errorf("a geometry struct (%.40s…) is not typed without the message's schema", raw)
		}
		s, err := str()
		if err != nil {
			return nil, err
		}
		b, err := binary(s, m.Binary)
		if err != nil {
			return nil, err
		}
		return cdc.PadBinary(col, b), nil
	case cdc.KindBit:
		if raw[0] == 't' || raw[0] == 'f' {
			return boolean(raw) // BIT(1)
		}
		return bits(raw)
	case cdc.KindDate:
		return days(raw)
	case cdc.KindDateTime:
		n, err := integer(raw)
		if err != nil {
			return nil, err
		}
		if m.Time != "connect" && col.Precision > 3 {
			return time.UnixMicro(n).UTC(), nil
		}
		return time.UnixMilli(n).UTC(), nil
	case cdc.KindTimestamp:
		s, err := str()
		if err != nil {
			return nil, err
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return nil, fmt.Errorf("timestamp %q: %w", s, err)
		}
		if t.Equal(time.Unix(0, 0)) {
			// The epoch is below TIMESTAMP's range (it starts one second
			// later): the connector sends it for MySQL's zero value
			// '0000-00-00 00:00:00' of a NOT NULL column, which the
			// binlog path gives as that text.
			return zeroDateTime(col.Precision), nil
		}
		return t.UTC(), nil
	case cdc.KindTime:
		n, err := integer(raw)
		if err != nil {
			return nil, err
		}
		unit := time.Microsecond
		if m.Time == "connect" || m.Time == "adaptive" && col.Precision <= 3 {
			unit = time.Millisecond
		}
		if n > math.MaxInt64/int64(unit) || n < math.MinInt64/int64(unit) {
			return nil, fmt.Errorf("time %d out of range", n)
		}
		return time.Duration(n) * unit, nil
	}
	return untyped(raw) // a type rowsync does not know: as without a schema
}

// decimal reads a DECIMAL in the connector's decimal.handling.mode. A JSON
// number is the double mode whatever the setting (it cannot be anything
// else); a string is base64 in precise mode and decimal text in string mode.
func decimal(col *cdc.Column, raw json.RawMessage, mode string) (cdc.Value, error) {
	scale := col.Precision
	if raw[0] != '"' {
		if !jsonvalue.IsNumber(raw) {
			return nil, fmt.Errorf("%.40s is not a decimal", raw)
		}
		x, err := strconv.ParseFloat(string(raw), 64)
		if err != nil || math.IsInf(x, 0) {
			return nil, fmt.Errorf("%.40s is not a decimal", raw)
		}
		return checkedDecimal(strconv.FormatFloat(x, 'f', max(scale, 0), 64))
	}
	s, err := jsonvalue.String(raw)
	if err != nil {
		return nil, err
	}
	if mode == "string" {
		return cdc.NormalizeDecimal(s, scale)
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("decimal %q is not base64 (decimal.handling.mode=precise): %w", s, err)
	}
	n, err := unscaled(b)
	if err != nil {
		return nil, err
	}
	if scale < 0 {
		return nil, errors.New("decimal: the definition gives no scale")
	}
	return checkedDecimal(formatUnscaled(n, scale))
}

// binary decodes a BINARY/BLOB value in binary.handling.mode.
func binary(s, mode string) ([]byte, error) {
	var b []byte
	var err error
	switch mode {
	case "hex":
		b, err = hex.DecodeString(s)
	case "base64-url-safe":
		b, err = base64.URLEncoding.DecodeString(s)
	default: // bytes (the JsonConverter writes base64), base64
		b, err = base64.StdEncoding.DecodeString(s)
	}
	if err != nil {
		return nil, fmt.Errorf("binary value is not %s: %w", cmpOr(mode, "base64"), err)
	}
	return b, nil
}

func cmpOr(a, b string) string {
	if a == "" || a == "bytes" {
		return b
	}
	return a
}

// jsonText is a JSON column's value as MySQL prints it, like the binlog
// and canal paths; text that is not JSON stays as it is.
func jsonText(s string) (cdc.Value, error) {
	if j, err := cdc.MySQLJSON([]byte(s)); err == nil {
		return j, nil
	}
	return cdc.JSON(s), nil
}

// zeroDateTime is MySQL's zero DATETIME/TIMESTAMP text with precision
// fraction digits, as the binlog path gives it ("0000-00-00 00:00:00.000").
func zeroDateTime(precision int) string {
	s := "0000-00-00 00:00:00"
	if precision > 0 {
		s += "." + strings.Repeat("0", min(precision, 6))
	}
	return s
}
