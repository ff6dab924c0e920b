package maxwell

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/source/decode/internal/jsonvalue"
)

// convert turns one JSON value of Maxwell's `data`/`old` into the canonical
// cdc.Value for col. col is nil when the table's schema is unknown; then
// the value is typed from its JSON form alone (see untyped).
func convert(col *cdc.Column, raw json.RawMessage) (cdc.Value, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, fmt.Errorf("empty value")
	}
	if raw[0] == 'n' { // null
		return nil, nil
	}
	if col == nil || col.Kind == cdc.KindUnknown {
		return untyped(raw)
	}
	switch col.Kind {
	case cdc.KindInt, cdc.KindYear, cdc.KindBit:
		switch raw[0] {
		case 't':
			return int64(1), nil
		case 'f':
			return int64(0), nil
		case '"':
			s, err := jsonvalue.String(raw)
			if err != nil {
				return nil, err
			}
			if v, ok := jsonvalue.Integer(s); ok {
				return v, nil
			}
			return nil, fmt.Errorf("%q is not an integer", s)
		}
		if v, ok := jsonvalue.Integer(string(raw)); ok {
			return v, nil
		}
		return nil, fmt.Errorf("%s is not an integer", raw)
	case cdc.KindFloat, cdc.KindDouble, cdc.KindDecimal:
		s := string(raw)
		if raw[0] == '"' {
			var err error
			if s, err = jsonvalue.String(raw); err != nil {
				return nil, err
			}
		} else if !jsonvalue.IsNumber(raw) {
			return nil, fmt.Errorf("%s is not a number", raw)
		}
		if col.Kind == cdc.KindDecimal {
			return decimal(s, col.Precision)
		}
		return cdc.ParseText(col, s)
	case cdc.KindBytes:
		if raw[0] != '"' {
			return nil, fmt.Errorf("%s is not a base64 string", raw)
		}
		s, err := jsonvalue.String(raw)
		if err != nil {
			return nil, err
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("binary value is not base64: %w", err)
		}
		return cdc.PadBinary(col, b), nil
	case cdc.KindJSON:
		return jsonvalue.JSON(raw)
	case cdc.KindSet:
		switch raw[0] {
		case '[':
			var labels []string
			if err := json.Unmarshal(raw, &labels); err != nil {
				return nil, fmt.Errorf("set value: %w", err)
			}
			if labels == nil {
				labels = []string{}
			}
			return cdc.Set(labels), nil
		case '"':
			s, err := jsonvalue.String(raw)
			if err != nil {
				return nil, err
			}
			return cdc.ParseText(col, s)
		}
		return nil, fmt.Errorf("%s is not a set", raw)
	}
	// strings, enums, dates, times: Maxwell writes them as JSON strings.
	var s string
	if raw[0] == '"' {
		var err error
		if s, err = jsonvalue.String(raw); err != nil {
			return nil, err
		}
	} else if jsonvalue.IsNumber(raw) {
		s = string(raw)
	} else {
		return nil, fmt.Errorf("%s is not a string", raw)
	}
	if col.Kind == cdc.KindString || col.Kind == cdc.KindEnum {
		return s, nil
	}
	return cdc.ParseText(col, s)
}

// untyped types a value whose column type is unknown:
//
//	string           string (dates, times and base64 BLOBs stay text)
//	integer number   int64, or uint64 above math.MaxInt64, or cdc.Decimal beyond uint64
//	other number     cdc.Decimal with the producer's digits (DECIMAL keeps its
//	                 scale; a DOUBLE keeps Jackson's text, "1.0" stays "1.0")
//	true / false     int64 1 / 0 (BIT(1), BOOL)
//	object / array   cdc.JSON, compact (JSON columns; a SET array also lands here)
func untyped(raw json.RawMessage) (cdc.Value, error) {
	switch raw[0] {
	case '"':
		return jsonvalue.String(raw)
	case 't':
		if string(raw) == "true" {
			return int64(1), nil
		}
	case 'f':
		if string(raw) == "false" {
			return int64(0), nil
		}
	case '{', '[':
		return jsonvalue.JSON(raw)
	default:
		if !jsonvalue.IsNumber(raw) {
			break
		}
		if v, ok := jsonvalue.Integer(string(raw)); ok {
			return v, nil
		}
		return decimal(string(raw), -1)
	}
	return nil, fmt.Errorf("%.40s is not a JSON value", raw)
}

// decimal returns the exact decimal text of a number literal, expanding an
// exponent ("1.0E+10" → "10000000000") since Jackson may print BigDecimal
// that way; scale ≥ 0 pads the fraction as cdc.NormalizeDecimal does.
func decimal(s string, scale int) (cdc.Decimal, error) {
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		plain, err := expand(s[:i], s[i+1:])
		if err != nil {
			return "", err
		}
		s = plain
	}
	return cdc.NormalizeDecimal(s, scale)
}

// expand writes mantissa×10^exp without an exponent.
func expand(mant, exp string) (string, error) {
	e, err := strconv.Atoi(exp)
	if err != nil || e > 400 || e < -400 {
		return "", fmt.Errorf("%se%s: exponent out of range", mant, exp)
	}
	sign := ""
	if strings.HasPrefix(mant, "-") {
		sign, mant = "-", mant[1:]
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	digits := intPart + frac
	point := len(intPart) + e
	var out string
	switch {
	case point <= 0:
		out = "0." + strings.Repeat("0", -point) + digits
	case point >= len(digits):
		out = digits + strings.Repeat("0", point-len(digits))
	default:
		out = digits[:point] + "." + digits[point:]
	}
	// drop leading zeros of the integer part, keep one
	for len(out) > 1 && out[0] == '0' && out[1] != '.' {
		out = out[1:]
	}
	return sign + out, nil
}
