package binlog

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/rowsync/rowsync/cdc"
)

// MySQL's JSON text, as SELECT returns it, is what every path (binlog,
// snapshot, refetch, verify) must agree on: one space after ':' and ',',
// object members in the binary format's order (key length, then key
// bytes), doubles as the server's my_gcvt prints them with ".0" added to
// whole numbers, DECIMAL scalars unquoted with their scale, DATE, TIME and
// DATETIME scalars quoted ("2012-03-18", "87:31:46.654321",
// "2012-03-18 11:30:45.000000").
//
// go-mysql (RenderJSONAsMySQLText) decodes the binary format into compact
// text that keeps every scalar's type-faithful form but prints doubles with
// Go's formatting; jsonDoc parses that text, applies partial-update diffs
// and prints MySQL's form.

// jsonNode is one parsed JSON value. Scalars keep their literal text
// (strings still quoted and escaped), so nothing is re-encoded.
type jsonNode struct {
	kind  byte // '{', '[', or 's' for a scalar
	lit   string
	keys  []string // decoded member names, in MySQL order
	rawK  []string // the same names as they appeared (quoted, escaped)
	vals  []*jsonNode
	elems []*jsonNode
}

const maxJSONDepth = 200 // MySQL refuses documents nested deeper than 100

// parseJSONDoc parses JSON text. Member order is normalised to MySQL's.
func parseJSONDoc(s string) (*jsonNode, error) {
	p := jsonParser{s: s}
	n, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.space()
	if p.i != len(p.s) {
		return nil, fmt.Errorf("json: trailing data at byte %d", p.i)
	}
	return n, nil
}

type jsonParser struct {
	s string
	i int
}

func (p *jsonParser) space() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\n' || p.s[p.i] == '\r') {
		p.i++
	}
}

func (p *jsonParser) value(depth int) (*jsonNode, error) {
	if depth > maxJSONDepth {
		return nil, errors.New("json: nested too deep")
	}
	p.space()
	if p.i >= len(p.s) {
		return nil, errors.New("json: unexpected end")
	}
	switch c := p.s[p.i]; {
	case c == '{':
		p.i++
		n := &jsonNode{kind: '{'}
		p.space()
		if p.i < len(p.s) && p.s[p.i] == '}' {
			p.i++
			return n, nil
		}
		for {
			p.space()
			raw, err := p.str()
			if err != nil {
				return nil, err
			}
			key, err := strconv.Unquote(raw)
			if err != nil {
				// MySQL strings may hold bytes that are not UTF-8 or
				// escapes Go rejects; compare them by their text then
				key = raw
			}
			p.space()
			if p.i >= len(p.s) || p.s[p.i] != ':' {
				return nil, fmt.Errorf("json: ':' expected at byte %d", p.i)
			}
			p.i++
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			n.set(key, raw, v)
			p.space()
			if p.i < len(p.s) && p.s[p.i] == ',' {
				p.i++
				continue
			}
			if p.i < len(p.s) && p.s[p.i] == '}' {
				p.i++
				return n, nil
			}
			return nil, fmt.Errorf("json: ',' or '}' expected at byte %d", p.i)
		}
	case c == '[':
		p.i++
		n := &jsonNode{kind: '['}
		p.space()
		if p.i < len(p.s) && p.s[p.i] == ']' {
			p.i++
			return n, nil
		}
		for {
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			n.elems = append(n.elems, v)
			p.space()
			if p.i < len(p.s) && p.s[p.i] == ',' {
				p.i++
				continue
			}
			if p.i < len(p.s) && p.s[p.i] == ']' {
				p.i++
				return n, nil
			}
			return nil, fmt.Errorf("json: ',' or ']' expected at byte %d", p.i)
		}
	case c == '"':
		raw, err := p.str()
		if err != nil {
			return nil, err
		}
		return &jsonNode{kind: 's', lit: raw}, nil
	default:
		start := p.i
		for p.i < len(p.s) && strings.IndexByte(" \t\r\n,]}:", p.s[p.i]) < 0 {
			p.i++
		}
		lit := p.s[start:p.i]
		switch lit {
		case "true", "false", "null":
			return &jsonNode{kind: 's', lit: lit}, nil
		}
		num, err := mysqlJSONNumber(lit)
		if err != nil {
			return nil, err
		}
		return &jsonNode{kind: 's', lit: num}, nil
	}
}

// str reads a quoted string and returns it as it appears.
func (p *jsonParser) str() (string, error) {
	if p.i >= len(p.s) || p.s[p.i] != '"' {
		return "", fmt.Errorf("json: string expected at byte %d", p.i)
	}
	start := p.i
	p.i++
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case '\\':
			p.i += 2
			continue
		case '"':
			p.i++
			return p.s[start:p.i], nil
		}
		p.i++
	}
	return "", errors.New("json: unterminated string")
}

// mysqlJSONNumber prints a number literal as MySQL does. Integers and
// DECIMAL scalars (no exponent) stay as they are; a double is recognised by
// its exponent, or, for whole numbers Go prints in fixed notation with
// ".0", by a magnitude MySQL prints with an exponent (1e15 and up).
func mysqlJSONNumber(lit string) (string, error) {
	if lit == "" {
		return "", errors.New("json: value expected")
	}
	if !strings.ContainsAny(lit, ".eE") {
		// an integer: kept as it is
		digits := strings.TrimPrefix(lit, "-")
		if digits == "" || strings.Trim(digits, "0123456789") != "" {
			return "", fmt.Errorf("json: bad number %q", lit)
		}
		return lit, nil
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil {
		return "", fmt.Errorf("json: bad number %q", lit)
	}
	isDouble := strings.ContainsAny(lit, "eE") ||
		(strings.HasSuffix(lit, ".0") && math.Abs(f) >= 1e15)
	if !isDouble {
		return lit, nil
	}
	return mysqlDouble(f), nil
}

// mysqlDouble prints a JSON double the way MySQL does: the shortest digits
// that read back the same, in fixed notation unless the decimal exponent is
// above 15 or below -3 (my_gcvt), exponent without '+' or leading zeros,
// and ".0" appended when neither a point nor an exponent was printed.
func mysqlDouble(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "null" // not storable in a MySQL JSON document
	}
	if f == 0 {
		if math.Signbit(f) {
			return "-0.0"
		}
		return "0.0"
	}
	e := strconv.FormatFloat(f, 'e', -1, 64) // d.ddde±XX
	mant, exps, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(exps)
	decpt := exp + 1
	var out string
	if decpt > 15 || decpt < -3 {
		out = mant + "e" + strconv.Itoa(exp)
	} else {
		out = strconv.FormatFloat(f, 'f', -1, 64)
	}
	if !strings.ContainsAny(out, ".e") {
		out += ".0"
	}
	return out
}

// keyLess is MySQL's member order: shorter keys first, then by bytes.
func keyLess(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}

// set adds or replaces a member, keeping MySQL's order.
func (n *jsonNode) set(key, raw string, v *jsonNode) {
	i, found := slices.BinarySearchFunc(n.keys, key, keyLess)
	if found {
		n.vals[i] = v
		return
	}
	n.keys = slices.Insert(n.keys, i, key)
	n.rawK = slices.Insert(n.rawK, i, raw)
	n.vals = slices.Insert(n.vals, i, v)
}

// text prints n in MySQL's SELECT form.
func (n *jsonNode) text() string {
	var b bytes.Buffer
	n.write(&b)
	return b.String()
}

func (n *jsonNode) write(b *bytes.Buffer) {
	switch n.kind {
	case '{':
		b.WriteByte('{')
		for i, k := range n.rawK {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(k)
			b.WriteString(": ")
			n.vals[i].write(b)
		}
		b.WriteByte('}')
	case '[':
		b.WriteByte('[')
		for i, e := range n.elems {
			if i > 0 {
				b.WriteString(", ")
			}
			e.write(b)
		}
		b.WriteByte(']')
	default:
		b.WriteString(n.lit)
	}
}

// mysqlJSON turns go-mysql's text of a binary JSON value into MySQL's. The
// binary format stores object members in MySQL's order already, so one
// pass adds the spaces and reprints doubles; no tree is built.
func mysqlJSON(s string) (cdc.JSON, error) {
	if s == "" {
		// an empty document (inserted with IGNORE or outside strict mode)
		// reads back as JSON null
		return cdc.JSON("null"), nil
	}
	b := make([]byte, 0, len(s)+len(s)/4)
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == '"':
			p := jsonParser{s: s, i: i}
			raw, err := p.str()
			if err != nil {
				return "", err
			}
			b = append(b, raw...)
			i = p.i
		case c == ':' || c == ',':
			b = append(b, c, ' ')
			i++
		case c == '-' || c >= '0' && c <= '9':
			end := i + 1
			for end < len(s) && strings.IndexByte("0123456789.eE+-", s[end]) >= 0 {
				end++
			}
			num, err := mysqlJSONNumber(s[i:end])
			if err != nil {
				return "", err
			}
			b = append(b, num...)
			i = end
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		default:
			b = append(b, c)
			i++
		}
	}
	return cdc.JSON(b), nil
}

// jsonStep is one leg of a JSON path: a member name or an array index.
type jsonStep struct {
	key   string
	index int
	isKey bool
}

// parseJSONPath reads the paths MySQL writes into partial-update diffs:
// "$", then .name, ."quoted name" or [n] legs (no wildcards).
func parseJSONPath(path string) ([]jsonStep, error) {
	if !strings.HasPrefix(path, "$") {
		return nil, fmt.Errorf("json path %q: no leading $", path)
	}
	var steps []jsonStep
	s := path[1:]
	for len(s) > 0 {
		switch s[0] {
		case '.':
			s = s[1:]
			if strings.HasPrefix(s, `"`) {
				p := jsonParser{s: s}
				raw, err := p.str()
				if err != nil {
					return nil, fmt.Errorf("json path %q: %w", path, err)
				}
				key, err := strconv.Unquote(raw)
				if err != nil {
					return nil, fmt.Errorf("json path %q: %w", path, err)
				}
				steps = append(steps, jsonStep{key: key, isKey: true})
				s = s[p.i:]
				continue
			}
			end := strings.IndexAny(s, ".[")
			if end < 0 {
				end = len(s)
			}
			if end == 0 {
				return nil, fmt.Errorf("json path %q: empty member name", path)
			}
			steps = append(steps, jsonStep{key: s[:end], isKey: true})
			s = s[end:]
		case '[':
			end := strings.IndexByte(s, ']')
			if end < 0 {
				return nil, fmt.Errorf("json path %q: unterminated [", path)
			}
			idx, err := strconv.Atoi(strings.TrimSpace(s[1:end]))
			if err != nil || idx < 0 {
				return nil, fmt.Errorf("json path %q: bad array index %q", path, s[1:end])
			}
			steps = append(steps, jsonStep{index: idx})
			s = s[end+1:]
		default:
			return nil, fmt.Errorf("json path %q: unexpected %q", path, s[0])
		}
	}
	return steps, nil
}

// applyJSONDiff applies one partial-update operation to doc as MySQL does
// (JSON_REPLACE, JSON_INSERT / JSON_ARRAY_INSERT, JSON_REMOVE) and returns
// the new document (doc itself may change).
func applyJSONDiff(doc *jsonNode, d *replication.JsonDiff) (*jsonNode, error) {
	steps, err := parseJSONPath(d.Path)
	if err != nil {
		return nil, err
	}
	var val *jsonNode
	if d.Op != replication.JsonDiffOperationRemove {
		if val, err = parseJSONDoc(d.Value); err != nil {
			return nil, fmt.Errorf("json diff value at %s: %w", d.Path, err)
		}
	}
	if len(steps) == 0 {
		if d.Op != replication.JsonDiffOperationReplace {
			return nil, fmt.Errorf("json diff %s on the whole document", d.Op)
		}
		return val, nil
	}
	parent := doc
	for _, st := range steps[:len(steps)-1] {
		parent = parent.child(st)
		if parent == nil {
			return nil, fmt.Errorf("json diff %s %s: path not in the previous value", d.Op, d.Path)
		}
	}
	last := steps[len(steps)-1]
	switch {
	case last.isKey && parent.kind == '{':
		i, found := slices.BinarySearchFunc(parent.keys, last.key, keyLess)
		switch d.Op {
		case replication.JsonDiffOperationReplace:
			if !found {
				return nil, fmt.Errorf("json diff replace %s: member not in the previous value", d.Path)
			}
			parent.vals[i] = val
		case replication.JsonDiffOperationInsert:
			if found {
				return nil, fmt.Errorf("json diff insert %s: member already in the previous value", d.Path)
			}
			parent.set(last.key, jsonQuote(last.key), val)
		case replication.JsonDiffOperationRemove:
			if !found {
				return nil, fmt.Errorf("json diff remove %s: member not in the previous value", d.Path)
			}
			parent.keys = slices.Delete(parent.keys, i, i+1)
			parent.rawK = slices.Delete(parent.rawK, i, i+1)
			parent.vals = slices.Delete(parent.vals, i, i+1)
		default:
			return nil, fmt.Errorf("json diff: unknown operation %d", d.Op)
		}
	case !last.isKey && parent.kind == '[':
		i := last.index
		switch d.Op {
		case replication.JsonDiffOperationReplace:
			if i >= len(parent.elems) {
				return nil, fmt.Errorf("json diff replace %s: index beyond the previous value", d.Path)
			}
			parent.elems[i] = val
		case replication.JsonDiffOperationInsert:
			parent.elems = slices.Insert(parent.elems, min(i, len(parent.elems)), val)
		case replication.JsonDiffOperationRemove:
			if i >= len(parent.elems) {
				return nil, fmt.Errorf("json diff remove %s: index beyond the previous value", d.Path)
			}
			parent.elems = slices.Delete(parent.elems, i, i+1)
		default:
			return nil, fmt.Errorf("json diff: unknown operation %d", d.Op)
		}
	default:
		return nil, fmt.Errorf("json diff %s %s: the previous value has no such container", d.Op, d.Path)
	}
	return doc, nil
}

// jsonQuote quotes s as MySQL prints a JSON string: '"', '\\' and control
// characters escaped, everything else as it is.
func jsonQuote(s string) string {
	const hex = "0123456789abcdef"
	b := make([]byte, 0, len(s)+2)
	b = append(b, '"')
	for i := range len(s) {
		switch c := s[i]; c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			if c < 0x20 {
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
				continue
			}
			b = append(b, c)
		}
	}
	return string(append(b, '"'))
}

func (n *jsonNode) child(st jsonStep) *jsonNode {
	switch {
	case st.isKey && n.kind == '{':
		if i, ok := slices.BinarySearchFunc(n.keys, st.key, keyLess); ok {
			return n.vals[i]
		}
	case !st.isKey && n.kind == '[':
		if st.index < len(n.elems) {
			return n.elems[st.index]
		}
	}
	return nil
}
