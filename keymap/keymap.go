// Package keymap renders key templates such as "user:{id}",
// "{db}_{table}_{pk}" or "user:email:{email|lower}" against a row.
//
// A placeholder names a column, or one of the built-ins {db}, {table} and
// {pk} (the primary-key values joined by ":"). Filters follow a "|":
// lower, upper, trim, hash (fnv, the default; or hash:md5, hash:sha1; hex
// output) and json:PATH (pick a value out of a JSON column: json:a.b[0]).
// "{{" and "}}" stand for literal braces. Rendering is pure and allocates
// only the result.
//
// A template remembers where in its rows' layout it last found each column
// it reads (a hint per column, checked against the column name before it
// is used), so that rendering the rows of one table reads the key columns
// by index instead of looking each up by name.
package keymap

import (
	"crypto/md5"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/rowsync/rowsync/cdc"
)

// ErrNull is returned by Render when a placeholder's column is NULL or
// absent from the row: such a key cannot be named.
var ErrNull = errors.New("column is NULL or missing")

// Template is a parsed key template. It is safe for concurrent use: the
// only state it changes is its hints, which change where it looks for a
// column first, never what it renders.
type Template struct {
	raw   string
	parts []part
	// at is, for each column part (part.at), where the last row rendered
	// held the column: its index in the row's layout; pkAt is the same
	// for the first primary-key columns. A hint is only a first guess,
	// used when the row's column there has that name, so it need not be
	// keyed by layout: rows of one table hit it, a row of another shape
	// (or a pooled row whose layout was reused, see cdc.RowPool) misses
	// and looks the name up.
	at   []atomic.Int32
	pkAt [pkHints]atomic.Int32
}

// pkHints is the number of primary-key columns a template keeps hints
// for; further ones are looked up by name.
const pkHints = 4

type partKind uint8

const (
	literal partKind = iota
	column
	builtinDB
	builtinTable
	builtinPK
)

type part struct {
	kind    partKind
	text    string // literal text or column name
	filters []filter
	at      int // column: its hint in Template.at
}

type filter func(string) (string, error)

// Parse parses a template; the error says what is wrong and where.
func Parse(s string) (*Template, error) {
	if s == "" {
		return nil, errors.New("empty key template")
	}
	t := &Template{raw: s}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.parts = append(t.parts, part{kind: literal, text: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '{' && i+1 < len(s) && s[i+1] == '{':
			lit.WriteByte('{')
			i++
		case c == '}' && i+1 < len(s) && s[i+1] == '}':
			lit.WriteByte('}')
			i++
		case c == '}':
			return nil, fmt.Errorf("template %q: unmatched } at %d", s, i)
		case c == '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return nil, fmt.Errorf("template %q: unclosed { at %d", s, i)
			}
			p, err := parsePlaceholder(s[i+1 : i+end])
			if err != nil {
				return nil, fmt.Errorf("template %q: %w", s, err)
			}
			flush()
			t.parts = append(t.parts, p)
			i += end
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	n := 0
	for i := range t.parts {
		if t.parts[i].kind == column {
			t.parts[i].at = n
			n++
		}
	}
	t.at = make([]atomic.Int32, n)
	return t, nil
}

// MustParse is Parse for templates known at compile time; it panics on error.
func MustParse(s string) *Template {
	t, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return t
}

func parsePlaceholder(body string) (part, error) {
	fields := strings.Split(body, "|")
	name := strings.TrimSpace(fields[0])
	if name == "" {
		return part{}, errors.New("empty placeholder {}")
	}
	p := part{kind: column, text: name}
	switch name {
	case "db":
		p.kind = builtinDB
	case "table":
		p.kind = builtinTable
	case "pk":
		p.kind = builtinPK
	}
	for _, f := range fields[1:] {
		fn, err := parseFilter(strings.TrimSpace(f))
		if err != nil {
			return part{}, fmt.Errorf("placeholder {%s}: %w", body, err)
		}
		p.filters = append(p.filters, fn)
	}
	return p, nil
}

func parseFilter(f string) (filter, error) {
	name, arg, _ := strings.Cut(f, ":")
	switch name {
	case "lower":
		return func(s string) (string, error) { return strings.ToLower(s), nil }, nil
	case "upper":
		return func(s string) (string, error) { return strings.ToUpper(s), nil }, nil
	case "trim":
		return func(s string) (string, error) { return strings.TrimSpace(s), nil }, nil
	case "hash":
		switch arg {
		case "", "fnv":
			return func(s string) (string, error) {
				h := fnv.New64a()
				h.Write([]byte(s))
				return strconv.FormatUint(h.Sum64(), 16), nil
			}, nil
		case "md5":
			return func(s string) (string, error) { sum := md5.Sum([]byte(s)); return hex.EncodeToString(sum[:]), nil }, nil
		case "sha1":
			return func(s string) (string, error) { sum := sha1.Sum([]byte(s)); return hex.EncodeToString(sum[:]), nil }, nil
		}
		return nil, fmt.Errorf("unknown hash %q (want fnv, md5 or sha1)", arg)
	case "json":
		path, err := parseJSONPath(arg)
		if err != nil {
			return nil, err
		}
		return func(s string) (string, error) { return pickJSON(s, path) }, nil
	}
	return nil, fmt.Errorf("unknown filter %q (want lower, upper, trim, hash, json)", name)
}

// String returns the template text.
func (t *Template) String() string { return t.raw }

// Columns returns the row columns the template reads, without {db},
// {table} and {pk}.
func (t *Template) Columns() []string {
	var out []string
	for _, p := range t.parts {
		if p.kind == column {
			out = append(out, p.text)
		}
	}
	return out
}

// UsesPK reports whether the template has a {pk} placeholder.
func (t *Template) UsesPK() bool {
	for _, p := range t.parts {
		if p.kind == builtinPK {
			return true
		}
	}
	return false
}

// UsesRow reports whether the template reads the row at all ({pk} or a
// column); a template that does not names one key per table.
func (t *Template) UsesRow() bool {
	for _, p := range t.parts {
		if p.kind == column || p.kind == builtinPK {
			return true
		}
	}
	return false
}

// CheckColumns returns an error naming every column the template reads
// that is not in known.
func (t *Template) CheckColumns(known []string) error {
	set := make(map[string]bool, len(known))
	for _, k := range known {
		set[k] = true
	}
	var errs []error
	for _, c := range t.Columns() {
		if !set[c] {
			errs = append(errs, fmt.Errorf("unknown column %q", c))
		}
	}
	return errors.Join(errs...)
}

// Input is what a template renders against.
type Input struct {
	DB, Table string
	PK        []string // primary-key column names in key order
	Row       *cdc.Row
	Columns   []cdc.Column // optional: types for value text
}

// Render renders the template. It returns ErrNull (wrapped, naming the
// column) when a column it needs is NULL or absent.
func (t *Template) Render(in Input) (string, error) {
	// Parts without filters are appended straight into one buffer (on the
	// stack for keys up to its size): the key is the only allocation.
	var buf [128]byte
	b, err := t.AppendRender(buf[:0], in)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// AppendRender appends the rendered key to b, for a caller that keeps
// keys in a buffer of its own; on error b's content is unspecified.
func (t *Template) AppendRender(b []byte, in Input) ([]byte, error) {
	return t.appendRender(b, &in)
}

// appendRender is AppendRender with in passed by pointer: the walk over the
// parts of a key, per row, kept in's fields on the stack and reloaded them
// at every part.
func (t *Template) appendRender(b []byte, in *Input) ([]byte, error) {
	for pi := range t.parts {
		p := &t.parts[pi]
		if len(p.filters) == 0 {
			// The common part: appended straight into b.
			var err error
			switch p.kind {
			case literal:
				b = append(b, p.text...)
			case builtinDB:
				b = append(b, in.DB...)
			case builtinTable:
				b = append(b, in.Table...)
			case builtinPK:
				if len(in.PK) == 0 {
					return b, fmt.Errorf("{pk}: table %s.%s has no primary key", in.DB, in.Table)
				}
				b, err = t.appendPK(b, in)
			case column:
				b, err = appendValue(b, in, p.text, &t.at[p.at])
			}
			if err != nil {
				return b, err
			}
			continue
		}
		var s string
		switch p.kind {
		case literal:
			s = p.text
		case builtinDB:
			s = in.DB
		case builtinTable:
			s = in.Table
		case builtinPK:
			if len(in.PK) == 0 {
				return b, fmt.Errorf("{pk}: table %s.%s has no primary key", in.DB, in.Table)
			}
			kb, err := t.appendPK(nil, in)
			if err != nil {
				return b, err
			}
			s = string(kb)
		case column:
			v, err := valueText(in, p.text, &t.at[p.at])
			if err != nil {
				return b, err
			}
			s = v
		}
		for _, f := range p.filters {
			var err error
			if s, err = f(s); err != nil {
				return b, fmt.Errorf("{%s}: %w", p.text, err)
			}
		}
		b = append(b, s...)
	}
	return b, nil
}

// value returns the value of column name and its description (nil when
// the event has none), or ErrNull when it is NULL or absent. hint is where
// the column was in the last row: see Template.at.
func value(in *Input, name string, hint *atomic.Int32) (*cdc.Column, cdc.Value, error) {
	i, v, ok := lookup(in.Row, name, hint)
	if !ok || v == nil {
		return nil, nil, fmt.Errorf("column %q: %w", name, ErrNull)
	}
	// The event's columns are usually the layout's, in its order.
	if i < len(in.Columns) && in.Columns[i].Name == name {
		return &in.Columns[i], v, nil
	}
	for i := range in.Columns {
		if in.Columns[i].Name == name {
			return &in.Columns[i], v, nil
		}
	}
	return nil, v, nil
}

// lookup returns the index in row's layout of the column named name and
// its value, false when row does not carry it. It tries hint's index
// first and, when the column is elsewhere, moves hint there.
func lookup(row *cdc.Row, name string, hint *atomic.Int32) (int, cdc.Value, bool) {
	if i := int(hint.Load()); i < row.Width() {
		if n, v, ok := row.At(i); n == name {
			return i, v, ok
		}
	}
	i, ok := row.Layout().Index(name)
	if !ok {
		return 0, nil, false
	}
	if i <= math.MaxInt32 && hint.Load() != int32(i) {
		hint.Store(int32(i))
	}
	_, v, ok := row.At(i)
	return i, v, ok
}

func valueText(in *Input, name string, hint *atomic.Int32) (string, error) {
	col, v, err := value(in, name, hint)
	if err != nil {
		return "", err
	}
	s, _ := cdc.FormatText(col, v)
	return s, nil
}

// appendPK appends the primary key's values to b, ':'-separated.
func (t *Template) appendPK(b []byte, in *Input) ([]byte, error) {
	var spare atomic.Int32 // for the key columns past pkAt's
	for i, c := range in.PK {
		if i > 0 {
			b = append(b, ':')
		}
		hint := &spare
		if i < len(t.pkAt) {
			hint = &t.pkAt[i]
		}
		var err error
		if b, err = appendValue(b, in, c, hint); err != nil {
			return b, err
		}
	}
	return b, nil
}

// appendValue appends the text of column name to b.
func appendValue(b []byte, in *Input, name string, hint *atomic.Int32) ([]byte, error) {
	col, v, err := value(in, name, hint)
	if err != nil {
		return b, err
	}
	b, _ = cdc.AppendText(b, col, v)
	return b, nil
}

// jsonStep is one step of a JSON path: an object key or an array index.
type jsonStep struct {
	key   string
	index int // -1 for a key step
}

// parseJSONPath accepts "a.b[0].c", optionally prefixed by "$." or "$".
func parseJSONPath(p string) ([]jsonStep, error) {
	p = strings.TrimPrefix(strings.TrimPrefix(p, "$"), ".")
	if p == "" {
		return nil, errors.New("json filter needs a path (json:a.b)")
	}
	var steps []jsonStep
	for _, seg := range strings.Split(p, ".") {
		name, rest, _ := strings.Cut(seg, "[")
		if name != "" {
			steps = append(steps, jsonStep{key: name, index: -1})
		}
		for rest != "" {
			num, after, ok := strings.Cut(rest, "]")
			n, err := strconv.Atoi(num)
			if !ok || err != nil || n < 0 {
				return nil, fmt.Errorf("bad json path %q", p)
			}
			steps = append(steps, jsonStep{index: n})
			rest = strings.TrimPrefix(after, "[")
		}
		if name == "" && len(steps) == 0 {
			return nil, fmt.Errorf("bad json path %q", p)
		}
	}
	return steps, nil
}

func pickJSON(doc string, path []jsonStep) (string, error) {
	var v any
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return "", fmt.Errorf("json filter: value is not JSON: %w", err)
	}
	for _, st := range path {
		switch x := v.(type) {
		case map[string]any:
			if st.index >= 0 {
				return "", fmt.Errorf("json filter: [%d] on an object: %w", st.index, ErrNull)
			}
			v = x[st.key]
		case []any:
			if st.index < 0 || st.index >= len(x) {
				return "", fmt.Errorf("json filter: no element %q: %w", st.key, ErrNull)
			}
			v = x[st.index]
		default:
			return "", fmt.Errorf("json filter: path goes past a scalar: %w", ErrNull)
		}
	}
	switch x := v.(type) {
	case nil:
		return "", fmt.Errorf("json filter: path not found or null: %w", ErrNull)
	case string:
		return x, nil
	case json.Number:
		return x.String(), nil
	case bool:
		return strconv.FormatBool(x), nil
	default:
		b, _ := json.Marshal(x)
		return string(b), nil
	}
}
