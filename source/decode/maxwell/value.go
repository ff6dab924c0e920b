package maxwell

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/rowsync/rowsync/cdc"
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
			s, err := str(raw)
			if err != nil {
				return nil, err
			}
			if v, ok := parseInteger(s); ok {
				return v, nil
			}
			return nil, fmt.Errorf("%q is not an integer", s)
		}
		if v, ok := parseInteger(string(raw)); ok {
			return v, nil
		}
		return nil, fmt.Errorf("%s is not an integer", raw)
	case cdc.KindFloat, cdc.KindDouble, cdc.KindDecimal:
		s := string(raw)
		if raw[0] == '"' {
			var err error
			if s, err = str(raw); err != nil {
				return nil, err
			}
		} else if !isNumber(raw) {
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
		s, err := str(raw)
		if err != nil {
			return nil, err
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("binary value is not base64: %w", err)
		}
		return b, nil
	case cdc.KindJSON:
		return compactJSON(raw)
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
			s, err := str(raw)
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
		if s, err = str(raw); err != nil {
			return nil, err
		}
	} else if isNumber(raw) {
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
		return str(raw)
	case 't':
		if string(raw) == "true" {
			return int64(1), nil
		}
	case 'f':
		if string(raw) == "false" {
			return int64(0), nil
		}
	case '{', '[':
		return compactJSON(raw)
	default:
		if !isNumber(raw) {
			break
		}
		if v, ok := parseInteger(string(raw)); ok {
			return v, nil
		}
		return decimal(string(raw), -1)
	}
	return nil, fmt.Errorf("%.40s is not a JSON value", raw)
}

func str(raw json.RawMessage) (string, error) {
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' {
		// the message was validated as a whole: without a backslash there is
		// nothing to unescape
		if s := raw[1 : len(raw)-1]; bytes.IndexByte(s, '\\') < 0 && bytes.IndexByte(s, '"') < 0 && utf8.Valid(s) {
			return string(s), nil
		}
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%.40s is not a string", raw)
	}
	return s, nil
}

// compactJSON renders an embedded JSON value as MySQL prints it, so it
// equals the binlog and canal paths (see cdc.MySQLJSON).
func compactJSON(raw json.RawMessage) (cdc.Value, error) {
	j, err := cdc.MySQLJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("json value: %w", err)
	}
	return j, nil
}

// parseInteger parses an integer literal into int64, or uint64 above
// math.MaxInt64 (cdc.Int).
func parseInteger(s string) (cdc.Value, bool) {
	if strings.HasPrefix(s, "-") {
		n, err := strconv.ParseInt(s, 10, 64)
		return n, err == nil
	}
	u, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return nil, false
	}
	return cdc.Int(u), true
}

// isNumber reports whether raw is a JSON number literal.
func isNumber(raw []byte) bool {
	if len(raw) == 0 {
		return false
	}
	i := 0
	if raw[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(raw) && raw[i] >= '0' && raw[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if digits() == 0 {
		return false
	}
	if i < len(raw) && raw[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(raw) && (raw[i] == 'e' || raw[i] == 'E') {
		i++
		if i < len(raw) && (raw[i] == '+' || raw[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(raw)
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
