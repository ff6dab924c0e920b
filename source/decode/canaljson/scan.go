package canaljson

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"unicode/utf16"
	"unicode/utf8"
)

// A small JSON scanner for the one shape canal writes. It validates the
// JSON grammar of everything it reads or skips, returns sub-slices of the
// input where it can (strings without escapes, numbers, raw objects), and
// never uses reflection: the decoder's hot path is this file.

// value kinds
const (
	kString byte = iota + 1
	kNull
	kNumber
	kTrue
	kFalse
	kRaw // object or array, b holds its raw text
)

// span is a value read: its kind and text (the raw text of an object or
// array, a string's unescaped text).
type span struct {
	b    []byte
	kind byte
}

// ref is where a value read lies, as offsets: b[lo:hi] of the scanner's
// input, or of its unescaped text (esc) for a string with escapes. It
// holds no pointer, so a slice of them is written without write barriers
// and need not be cleared before pooling.
type ref struct {
	lo, hi int
	kind   byte
	esc    bool
}

type scanner struct {
	b []byte
	i int
	// esc holds the unescaped text of the strings with escapes read so
	// far, appended to and never overwritten while the scanner is used.
	esc []byte
}

// bytes returns the text r locates.
func (s *scanner) bytes(r ref) []byte {
	if r.esc {
		return s.esc[r.lo:r.hi]
	}
	return s.b[r.lo:r.hi]
}

// maxDepth bounds nesting in skipped values so hostile input cannot recurse
// deeply.
const maxDepth = 512

var errEOF = errors.New("unexpected end of JSON")

func (s *scanner) errf(format string, args ...any) error {
	return fmt.Errorf("offset %d: "+format, append([]any{s.i}, args...)...)
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (s *scanner) peek() byte {
	s.ws()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

func (s *scanner) consume(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c { // no space before it: the usual case
		s.i++
		return true
	}
	if s.peek() == c {
		s.i++
		return true
	}
	return false
}

func (s *scanner) expect(c byte) error {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return nil
	}
	if s.consume(c) {
		return nil
	}
	if s.i >= len(s.b) {
		return errEOF
	}
	return s.errf("expected %q, found %q", c, s.b[s.i])
}

func (s *scanner) literal(lit string) error {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return s.errf("invalid literal")
	}
	s.i += len(lit)
	return nil
}

// str reads a string; the result aliases the input unless it had escapes,
// else the scanner's unescaped text.
func (s *scanner) str() ([]byte, error) {
	r, err := s.strRef()
	if err != nil {
		return nil, err
	}
	return s.bytes(r), nil
}

// token is a member's name and colon as scanner.member reads them,
// `"name":` (text), with its first and last 8 bytes (4 when shorter than
// 8) as little-endian words, so that a short one is compared with the
// input by two loads each. The name must be plain: without '"', '\\' or
// control characters, so that the input holds exactly it between quotes
// where str would read it.
type token struct {
	text   string
	lo, hi uint64
}

// newToken returns the token of a plain name.
func newToken(name string) token {
	t := token{text: `"` + name + `":`}
	switch b := []byte(t.text); {
	case len(b) >= 8:
		t.lo, t.hi = binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[len(b)-8:])
	case len(b) >= 4:
		t.lo, t.hi = uint64(binary.LittleEndian.Uint32(b)), uint64(binary.LittleEndian.Uint32(b[len(b)-4:]))
	}
	return t
}

// member reads t if it is next, and reports whether it was; the name is
// then s.b[s.i-len(t.text)+1 : s.i-2].
func (s *scanner) member(t *token) bool {
	b, i, n := s.b, s.i, len(t.text)
	if i+n > len(b) {
		return false
	}
	switch {
	case n >= 8 && n <= 16: // the first and last 8 bytes are all of it
		if binary.LittleEndian.Uint64(b[i:i+8]) != t.lo || binary.LittleEndian.Uint64(b[i+n-8:i+n]) != t.hi {
			return false
		}
	case n >= 4 && n < 8:
		if uint64(binary.LittleEndian.Uint32(b[i:i+4])) != t.lo || uint64(binary.LittleEndian.Uint32(b[i+n-4:i+n])) != t.hi {
			return false
		}
	default:
		if string(b[i:i+n]) != t.text {
			return false
		}
	}
	s.i = i + n
	return true
}

// strRef reads a string and returns where its text lies.
func (s *scanner) strRef() (ref, error) {
	if c := s.peek(); c != '"' {
		if c == 0 {
			return ref{}, errEOF
		}
		return ref{}, s.errf("expected string, found %q", c)
	}
	return s.strAt()
}

// strAt reads the string whose opening quote is at s.i.
func (s *scanner) strAt() (ref, error) {
	b := s.b
	start := s.i + 1
	j := start
	// Skip 8 bytes at a time while none of them ends the string, starts
	// an escape or is a control character; the loop below decides at the
	// first byte that may.
	for ; j+8 <= len(b); j += 8 {
		if m := special(binary.LittleEndian.Uint64(b[j : j+8])); m != 0 {
			j += bits.TrailingZeros64(m) / 8
			break
		}
	}
	for ; j < len(b); j++ {
		c := b[j]
		switch {
		case c == '"':
			s.i = j + 1
			return ref{lo: start, hi: j, kind: kString}, nil
		case c == '\\':
			return s.strSlow(start, j)
		case c < 0x20:
			s.i = j
			return ref{}, s.errf("control character in string")
		}
	}
	return ref{}, errEOF
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// special flags (in its byte's high bit) each byte of the little-endian
// word x that is '"', '\\' or below 0x20. A flag can be false only above
// a true one (a borrow), so the lowest flag is exact and a zero result
// means no such byte.
func special(x uint64) uint64 {
	q := x ^ ('"' * lsb)
	b := x ^ ('\\' * lsb)
	return ((x-0x20*lsb) & ^x | (q-lsb) & ^q | (b-lsb) & ^b) & msb
}

// strSlow unescapes a string whose first escape is at j, to the end of
// s.esc.
func (s *scanner) strSlow(start, j int) (ref, error) {
	lo := len(s.esc)
	out := append(s.esc, s.b[start:j]...)
	defer func() { s.esc = out }()
	for j < len(s.b) {
		c := s.b[j]
		switch {
		case c == '"':
			s.i = j + 1
			return ref{lo: lo, hi: len(out), kind: kString, esc: true}, nil
		case c < 0x20:
			s.i = j
			return ref{}, s.errf("control character in string")
		case c != '\\':
			out = append(out, c)
			j++
			continue
		}
		j++
		if j >= len(s.b) {
			return ref{}, errEOF
		}
		switch s.b[j] {
		case '"', '\\', '/':
			out = append(out, s.b[j])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(s.b, j+1)
			if !ok {
				s.i = j
				return ref{}, s.errf("bad \\u escape")
			}
			j += 4
			if utf16.IsSurrogate(r) {
				// a pair \uD83D\uDE80; a lone surrogate becomes U+FFFD as in encoding/json
				if j+6 < len(s.b) && s.b[j+1] == '\\' && s.b[j+2] == 'u' {
					if r2, ok := hex4(s.b, j+3); ok {
						if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
							r = d
							j += 6
						} else {
							r = utf8.RuneError
						}
					} else {
						r = utf8.RuneError
					}
				} else {
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			s.i = j
			return ref{}, s.errf("bad escape")
		}
		j++
	}
	return ref{}, errEOF
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// number reads a JSON number and returns where its text lies.
func (s *scanner) number() (ref, error) {
	b := s.b
	start := s.i
	j := s.i
	if j < len(b) && b[j] == '-' {
		j++
	}
	switch {
	case j < len(b) && b[j] == '0':
		j++
	case j < len(b) && b[j]-'1' < 9:
		for j++; j < len(b) && b[j]-'0' < 10; j++ {
		}
	default:
		return ref{}, s.errf("invalid number")
	}
	if j < len(b) && b[j] == '.' {
		j++
		d := j
		for j < len(b) && b[j]-'0' < 10 {
			j++
		}
		if j == d {
			return ref{}, s.errf("invalid number")
		}
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		d := j
		for j < len(b) && b[j]-'0' < 10 {
			j++
		}
		if j == d {
			return ref{}, s.errf("invalid number")
		}
	}
	s.i = j
	return ref{lo: start, hi: j, kind: kNumber}, nil
}

// value reads any JSON value.
func (s *scanner) value() (span, error) {
	r, err := s.valueRef()
	if err != nil {
		return span{kind: r.kind}, err
	}
	if r.kind == kNull || r.kind == kTrue || r.kind == kFalse {
		return span{kind: r.kind}, nil
	}
	return span{s.bytes(r), r.kind}, nil
}

// valueRef reads any JSON value and returns where its text lies (none for
// null, true and false).
func (s *scanner) valueRef() (ref, error) {
	switch c := s.peek(); {
	case c == '"':
		return s.strAt()
	case c == 'n':
		return ref{kind: kNull}, s.literal("null")
	case c == 't':
		return ref{kind: kTrue}, s.literal("true")
	case c == 'f':
		return ref{kind: kFalse}, s.literal("false")
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	case c == '{' || c == '[':
		start := s.i
		err := s.skip(0)
		return ref{lo: start, hi: s.i, kind: kRaw}, err
	case c == 0:
		return ref{}, errEOF
	default:
		return ref{}, s.errf("unexpected %q", c)
	}
}

// skip reads and discards one value, checking its grammar. The unescaped
// text of its strings is not kept.
func (s *scanner) skip(depth int) error {
	n := len(s.esc)
	err := s.skipValue(depth)
	s.esc = s.esc[:n]
	return err
}

func (s *scanner) skipValue(depth int) error {
	if depth > maxDepth {
		return s.errf("nesting too deep")
	}
	switch c := s.peek(); c {
	case '{':
		s.i++
		if s.consume('}') {
			return nil
		}
		for {
			if _, err := s.strRef(); err != nil {
				return err
			}
			if err := s.expect(':'); err != nil {
				return err
			}
			if err := s.skipValue(depth + 1); err != nil {
				return err
			}
			if s.consume(',') {
				continue
			}
			return s.expect('}')
		}
	case '[':
		s.i++
		if s.consume(']') {
			return nil
		}
		for {
			if err := s.skipValue(depth + 1); err != nil {
				return err
			}
			if s.consume(',') {
				continue
			}
			return s.expect(']')
		}
	default:
		_, err := s.valueRef()
		return err
	}
}

// object calls fn for each member of an object; fn must consume the value.
// A JSON null instead of an object calls nothing and reports null=true.
func (s *scanner) object(fn func(key []byte) error) (null bool, err error) {
	if s.peek() == 'n' {
		return true, s.literal("null")
	}
	if err := s.expect('{'); err != nil {
		return false, err
	}
	if s.consume('}') {
		return false, nil
	}
	for {
		key, err := s.str()
		if err != nil {
			return false, err
		}
		if err := s.expect(':'); err != nil {
			return false, err
		}
		if err := fn(key); err != nil {
			return false, err
		}
		if s.consume(',') {
			continue
		}
		return false, s.expect('}')
	}
}

// array calls fn for each element; null instead of an array reports null.
func (s *scanner) array(fn func(i int) error) (null bool, err error) {
	if s.peek() == 'n' {
		return true, s.literal("null")
	}
	if err := s.expect('['); err != nil {
		return false, err
	}
	if s.consume(']') {
		return false, nil
	}
	for i := 0; ; i++ {
		if err := fn(i); err != nil {
			return false, err
		}
		if s.consume(',') {
			continue
		}
		return false, s.expect(']')
	}
}
