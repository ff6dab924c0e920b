package cdc

import (
	"bytes"
	"encoding/json"
)

// MySQLJSON renders JSON text the way MySQL prints a JSON column: no
// insignificant white space except one space after each ':' and ','
// ({"a": 1, "b": [1, 2]}). Formats that re-serialize JSON values (Maxwell,
// Debezium) lose the server's text; rendering them this way makes them
// agree with the binlog and canal paths on MySQL, whose JSON text is
// always in this form. Member order is kept. Invalid JSON is an error.
func MySQLJSON(raw []byte) (JSON, error) {
	var c bytes.Buffer
	if err := json.Compact(&c, raw); err != nil {
		return "", err
	}
	src := c.Bytes()
	out := make([]byte, 0, len(src)+len(src)/8)
	inString, escaped := false, false
	for _, ch := range src {
		out = append(out, ch)
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case ch == '\\':
				escaped = true
			case ch == '"':
				inString = false
			}
		case ch == '"':
			inString = true
		case ch == ':' || ch == ',':
			out = append(out, ' ')
		}
	}
	return JSON(out), nil
}
