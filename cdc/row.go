package cdc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"iter"
	"reflect"
	"slices"
	"strings"
)

// Row is one row image: column values by name, in the order the source
// gave the columns (the table's for the binlog, the message's for JSON
// formats). See Value for the Go types of the values; a NULL column is
// present with a nil Value, a column the image does not carry is absent.
//
// A Row is a slice of values beside a Layout, the column names, which the
// rows of one table share: a decoder fills a row by column index without
// hashing a name, and a sink walks it in order. A map per row, hashed on
// every write and read, cost rowsync a third of its CPU on the binlog path.
//
// A nil *Row is a valid empty row (the image an event does not have): it
// reads as having no columns. A Row is not safe for concurrent writes;
// concurrent reads are safe.
type Row struct {
	layout *Layout
	vals   []Value // vals[i] is the value of layout.names[i], or absent
	n      int     // present values
}

// Layout is the column names of rows of one shape, in order, with an index
// by name for wide rows. A layout made by NewLayout is shared: never
// modified, the rows of it only read it, so a reader may key a cache on
// it (Shared). A row's own layout (RowOf, BatchRows.Get, or
// one Set copied) grows as Set adds columns and is emptied by Reset and by
// its batch's Recycle: read it only while the row is unchanged. NewRow
// and BatchRows.Of copy an own layout they are given, so a row always has
// exactly one value slot per name of its layout.
type Layout struct {
	names  []string
	index  map[string]int // nil while len(names) <= linearNames
	shared bool           // made by NewLayout: never modified
}

// linearNames is the widest layout searched by scanning its names: below
// it a scan is cheaper than hashing the name.
const linearNames = 12

// absentValue marks a slot of Row.vals whose column the row does not carry.
type absentValue struct{}

var absent Value = absentValue{}

// isAbsent reports whether v is the absent marker: a type assertion looks
// at the type word alone, where v == absent would also call the runtime's
// interface comparison for every fresh slot.
func isAbsent(v Value) bool {
	_, ok := v.(absentValue)
	return ok
}

// NewLayout returns the layout of names, which it keeps: the caller must
// not modify names afterwards. A repeated name is an error (a row holds
// one value per column).
func NewLayout(names []string) (*Layout, error) {
	l := &Layout{names: names, shared: true}
	l.reindex()
	if len(names) <= linearNames {
		for i, name := range names {
			if slices.Contains(names[:i], name) {
				return nil, fmt.Errorf("column %q named twice", name)
			}
		}
	} else if len(l.index) != len(names) {
		for i, name := range names {
			if l.index[name] != i {
				return nil, fmt.Errorf("column %q named twice", name)
			}
		}
	}
	return l, nil
}

// reindex builds the index of a wide layout.
func (l *Layout) reindex() {
	if len(l.names) <= linearNames {
		l.index = nil
		return
	}
	l.index = make(map[string]int, len(l.names))
	for i, name := range l.names {
		if _, dup := l.index[name]; !dup {
			l.index[name] = i
		}
	}
}

// Shared reports whether l was made by NewLayout: it never changes, and
// every row of it has the same names at the same indexes.
func (l *Layout) Shared() bool { return l != nil && l.shared }

// own returns l if it is shared, else a copy: the layout a new row of l's
// names may hold while l's row goes on changing its own.
func (l *Layout) own() *Layout {
	if l == nil || l.shared {
		return l
	}
	c := &Layout{names: slices.Clone(l.names)}
	c.reindex()
	return c
}

// ownsLayout reports whether r's layout belongs to r alone (every layout
// that is not shared does: NewRow, Of, Clone and Set copy the others), so
// Set may append to it and Reset empty it.
func (r *Row) ownsLayout() bool { return r.layout != nil && !r.layout.shared }

// Names returns the column names in order; the caller must not modify them.
func (l *Layout) Names() []string {
	if l == nil {
		return nil
	}
	return l.names
}

// Len is the number of columns.
func (l *Layout) Len() int {
	if l == nil {
		return 0
	}
	return len(l.names)
}

// Index returns the position of the column named name, false if l has no
// such column.
func (l *Layout) Index(name string) (int, bool) {
	if l == nil {
		return 0, false
	}
	if l.index != nil {
		i, ok := l.index[name]
		return i, ok
	}
	for i, n := range l.names {
		if n == name {
			return i, true
		}
	}
	return 0, false
}

// appendName adds name to a layout owned by one row.
func (l *Layout) appendName(name string) {
	l.names = append(l.names, name)
	switch {
	case l.index != nil:
		l.index[name] = len(l.names) - 1
	case len(l.names) > linearNames:
		l.reindex()
	}
}

// NewRow returns an empty row of layout l: Set and SetAt fill it.
func NewRow(l *Layout) *Row {
	l = l.own()
	r := &Row{layout: l, vals: make([]Value, l.Len())}
	for i := range r.vals {
		r.vals[i] = absent
	}
	return r
}

// RowOf returns a row of the given name, value pairs, in that order: a
// row literal (RowOf("id", int64(1), "name", "ann")). It panics when the
// pairs are odd in number or a name is not a string: a programming error,
// like a malformed composite literal. A repeated name keeps its last value.
func RowOf(pairs ...Value) *Row {
	if len(pairs)%2 != 0 {
		panic("cdc.RowOf: odd number of arguments")
	}
	r := &Row{layout: &Layout{names: make([]string, 0, len(pairs)/2)}, vals: make([]Value, 0, len(pairs)/2)}
	for i := 0; i < len(pairs); i += 2 {
		name, ok := pairs[i].(string)
		if !ok {
			panic(fmt.Sprintf("cdc.RowOf: argument %d is a %T, not a column name", i, pairs[i]))
		}
		r.Set(name, pairs[i+1])
	}
	return r
}

// Layout returns the row's layout: Width columns, of which Len are present.
func (r *Row) Layout() *Layout {
	if r == nil {
		return nil
	}
	return r.layout
}

// Len is the number of columns the row carries.
func (r *Row) Len() int {
	if r == nil {
		return 0
	}
	return r.n
}

// Width is the number of columns of the row's layout: At takes 0 to Width-1.
func (r *Row) Width() int {
	if r == nil {
		return 0
	}
	return len(r.vals)
}

// At returns the name and value of the layout's column i, false when the
// row does not carry it.
func (r *Row) At(i int) (string, Value, bool) {
	v := r.vals[i]
	if isAbsent(v) {
		return r.layout.names[i], nil, false
	}
	return r.layout.names[i], v, true
}

// Lookup returns the value of the column named name, false when the row
// does not carry it.
func (r *Row) Lookup(name string) (Value, bool) {
	if r == nil {
		return nil, false
	}
	i, ok := r.layout.Index(name)
	if !ok {
		return nil, false
	}
	v := r.vals[i]
	if isAbsent(v) {
		return nil, false
	}
	return v, true
}

// LookupAt returns the value of the column named name, which is at index
// i of layout l (another image's of the same change): read at i when r has
// layout l, as the before and after images of a binlog update share their
// table's layout, and looked up by name otherwise.
func (r *Row) LookupAt(l *Layout, i int, name string) (Value, bool) {
	if r != nil && l != nil && r.layout == l {
		_, v, ok := r.At(i)
		return v, ok
	}
	return r.Lookup(name)
}

// IndexFrom returns the layout index of the column named name, trying
// index at first: a caller walking columns in the row's order (an event's
// Columns against a binlog row) passes the index after the last one found
// and finds each without a search. False when the layout has no such
// column.
func (r *Row) IndexFrom(name string, at int) (int, bool) {
	if r == nil {
		return 0, false
	}
	if at >= 0 && at < len(r.vals) && r.layout.names[at] == name {
		return at, true
	}
	return r.layout.Index(name)
}

// Get returns the value of the column named name: nil when it is NULL or
// the row does not carry it (Lookup tells the two apart).
func (r *Row) Get(name string) Value {
	v, _ := r.Lookup(name)
	return v
}

// Has reports whether the row carries the column named name.
func (r *Row) Has(name string) bool {
	_, ok := r.Lookup(name)
	return ok
}

// SetAt sets the value of the layout's column i.
func (r *Row) SetAt(i int, v Value) {
	if isAbsent(r.vals[i]) {
		r.n++
	}
	r.vals[i] = v
}

// Set sets the value of the column named name, adding the column after the
// others when the row's layout has none of that name (the layout is
// copied first when other rows share it).
func (r *Row) Set(name string, v Value) {
	if i, ok := r.layout.Index(name); ok {
		r.SetAt(i, v)
		return
	}
	if !r.ownsLayout() {
		names := make([]string, len(r.vals), len(r.vals)+4)
		copy(names, r.layout.Names())
		r.layout = &Layout{names: names}
		r.layout.reindex()
	}
	r.layout.appendName(name)
	r.vals = append(r.vals, v)
	r.n++
}

// Delete removes the column named name from the row; nothing when the row
// does not carry it.
func (r *Row) Delete(name string) {
	if r == nil {
		return
	}
	if i, ok := r.layout.Index(name); ok && !isAbsent(r.vals[i]) {
		r.vals[i] = absent
		r.n--
	}
}

// All yields the row's columns in order, name and value.
func (r *Row) All() iter.Seq2[string, Value] {
	return func(yield func(string, Value) bool) {
		if r == nil {
			return
		}
		for i, v := range r.vals {
			if isAbsent(v) {
				continue
			}
			if !yield(r.layout.names[i], v) {
				return
			}
		}
	}
}

// Names returns the names of the columns the row carries, in order, in a
// new slice.
func (r *Row) Names() []string {
	out := make([]string, 0, r.Len())
	for name := range r.All() {
		out = append(out, name)
	}
	return out
}

// Clone returns a copy of r (nil for nil) that shares its layout when
// other rows may too; values are shared, as they are never modified.
func (r *Row) Clone() *Row {
	if r == nil {
		return nil
	}
	return &Row{layout: r.layout.own(), vals: slices.Clone(r.vals), n: r.n}
}

// copyFrom makes r a copy of src, reusing r's value slice, and r's own
// layout when src's layout is its own too.
func (r *Row) copyFrom(src *Row) {
	switch {
	case !src.ownsLayout():
		r.layout = src.layout
	case r.ownsLayout():
		r.layout.names = append(r.layout.names[:0], src.layout.names...)
		r.layout.reindex()
	default:
		r.layout = src.layout.own()
	}
	r.vals, r.n = append(r.vals[:0], src.vals...), src.n
}

// Map returns the row's columns as a map (nil for a nil row).
func (r *Row) Map() map[string]Value {
	if r == nil {
		return nil
	}
	m := make(map[string]Value, r.n)
	for name, v := range r.All() {
		m[name] = v
	}
	return m
}

// Equal reports whether r and o carry the same columns with equal values,
// in whatever order: []byte values compare by content, others as
// reflect.DeepEqual does. A nil row equals only another nil row.
func (r *Row) Equal(o *Row) bool {
	if r == nil || o == nil {
		return r == nil && o == nil
	}
	if r.n != o.n {
		return false
	}
	for name, v := range r.All() {
		w, ok := o.Lookup(name)
		if !ok || !valueEqual(v, w) {
			return false
		}
	}
	return true
}

func valueEqual(a, b Value) bool {
	if ab, ok := a.([]byte); ok {
		bb, ok := b.([]byte)
		return ok && bytes.Equal(ab, bb)
	}
	return reflect.DeepEqual(a, b)
}

// String formats the row as {name:value ...}, in order.
func (r *Row) String() string {
	if r == nil {
		return "<nil>"
	}
	var b strings.Builder
	b.WriteByte('{')
	first := true
	for name, v := range r.All() {
		if !first {
			b.WriteByte(' ')
		}
		first = false
		fmt.Fprintf(&b, "%s:%v", name, v)
	}
	b.WriteByte('}')
	return b.String()
}

// MarshalJSON encodes the row as a JSON object, its columns in order, as
// encoding/json encodes each value.
func (r *Row) MarshalJSON() ([]byte, error) {
	if r == nil {
		return []byte("null"), nil
	}
	var b bytes.Buffer
	b.WriteByte('{')
	first := true
	for name, v := range r.All() {
		if !first {
			b.WriteByte(',')
		}
		first = false
		k, err := json.Marshal(name)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		val, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", name, err)
		}
		b.Write(val)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON decodes a JSON object into the row, its members in order,
// each value as encoding/json decodes into an interface (float64 numbers,
// strings, bools, nil, maps and slices): for tests and tools, not for
// decoding a format (the decoders type values by column).
//
// JSON null leaves the row as it is, as encoding/json's convention for
// Unmarshalers has it (a *Row field decodes null as a nil row).
func (r *Row) UnmarshalJSON(data []byte) error {
	if string(bytes.TrimSpace(data)) == "null" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != json.Delim('{') {
		return fmt.Errorf("row: want a JSON object, got %v", tok)
	}
	*r = Row{layout: &Layout{}}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		name, _ := tok.(string)
		var v Value
		if err := dec.Decode(&v); err != nil {
			return fmt.Errorf("column %s: %w", name, err)
		}
		r.Set(name, v)
	}
	_, err = dec.Token()
	return err
}

// Reset empties r, keeping the room of its values (and of its layout when
// the layout is its own) for the columns Set adds next.
func (r *Row) Reset() {
	if r == nil {
		return
	}
	clear(r.vals)
	r.vals, r.n = r.vals[:0], 0
	if r.ownsLayout() {
		clear(r.layout.names)
		r.layout.names = r.layout.names[:0]
		clear(r.layout.index) // kept: a wide row refills it without regrowing
		return
	}
	r.layout = &Layout{}
}
