package jsonvalue

import (
	"bytes"
	"errors"
	"unicode/utf8"
)

// ErrNotObject is EachMember's error for anything but a JSON object.
var ErrNotObject = errors.New("row is not an object")

// EachMember calls fn with each member of the JSON object obj in order: the
// unescaped name and the raw value. It reads a value of a message already
// validated as a whole (json.Unmarshal of the payload), so it only finds
// boundaries; a malformed object is an error, never a panic.
func EachMember(obj []byte, fn func(name, v []byte) error) error {
	i := SkipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return ErrNotObject
	}
	i = SkipSpace(obj, i+1)
	if i < len(obj) && obj[i] == '}' {
		return nil
	}
	for {
		if i >= len(obj) || obj[i] != '"' {
			return ErrNotObject
		}
		end, ok := skipString(obj, i)
		if !ok {
			return ErrNotObject
		}
		name := obj[i+1 : end-1]
		if bytes.IndexByte(name, '\\') >= 0 || !utf8.Valid(name) {
			s, err := String(obj[i:end])
			if err != nil {
				return ErrNotObject
			}
			name = []byte(s)
		}
		i = SkipSpace(obj, end)
		if i >= len(obj) || obj[i] != ':' {
			return ErrNotObject
		}
		start := SkipSpace(obj, i+1)
		vend, ok := SkipValue(obj, start)
		if !ok {
			return ErrNotObject
		}
		if err := fn(name, obj[start:vend]); err != nil {
			return err
		}
		i = SkipSpace(obj, vend)
		switch {
		case i < len(obj) && obj[i] == ',':
			i = SkipSpace(obj, i+1)
		case i < len(obj) && obj[i] == '}':
			return nil
		default:
			return ErrNotObject
		}
	}
}

// SkipSpace returns the index of the first byte of b at or after i that
// is not JSON whitespace (len(b) when none is).
func SkipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// SkipValue returns the end of the JSON value at b[i] by matching brackets
// outside strings; it does not validate the value.
func SkipValue(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				end, ok := skipString(b, i)
				if !ok {
					return 0, false
				}
				i = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, true
				}
			}
			i++
		}
		return 0, false
	}
	start := i
	for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
		i++
	}
	return i, i > start
}

// skipString returns the index after the string starting at b[i] == '"'.
func skipString(b []byte, i int) (int, bool) {
	for i++; i < len(b); {
		q := bytes.IndexByte(b[i:], '"')
		if q < 0 {
			return 0, false
		}
		i += q
		// escaped if an odd number of backslashes precede it
		n := 0
		for j := i - 1; j >= 0 && b[j] == '\\'; j-- {
			n++
		}
		i++
		if n%2 == 0 {
			return i, true
		}
	}
	return 0, false
}
