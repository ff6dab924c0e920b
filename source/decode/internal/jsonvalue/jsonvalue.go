// Package jsonvalue holds the reading of single JSON values that the
// Debezium, Maxwell and JSON lines decoders share: strings, embedded JSON,
// integer and number literals, an object's members in order. Values come
// from a message already validated as a whole.
package jsonvalue

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/rowsync/rowsync/cdc"
)

// String reads a JSON string.
func String(raw json.RawMessage) (string, error) {
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

// JSON renders an embedded JSON value as MySQL prints it, so it equals the
// binlog and canal paths (see cdc.MySQLJSON).
func JSON(raw json.RawMessage) (cdc.Value, error) {
	j, err := cdc.MySQLJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("json value: %w", err)
	}
	return j, nil
}

// Integer parses an integer literal into int64, or uint64 above
// math.MaxInt64 (cdc.Int).
func Integer(s string) (cdc.Value, bool) {
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

// IsNumber reports whether raw is a JSON number literal.
func IsNumber(raw []byte) bool {
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
