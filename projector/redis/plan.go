package redis

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"time"
	"unsafe"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/keymap"
)

type opKind uint8

const (
	opWrite opKind = iota + 1
	opDelete
)

// op is the final state of one key after coalescing an Apply call.
type op struct {
	key  string
	kind opKind
	rule *rule
	// ev is the event whose After image a write takes its fields from.
	ev int
	// version guards the op; 0 applies unguarded.
	version uint64
	// events lists every event that touched the key, for error reports.
	first int
	more  []int
}

func (o *op) events() []int { return append([]int{o.first}, o.more...) }

// plan coalesces events into one op per key, in order of first touch. It
// also holds the memory encode builds the commands in. A Projector reuses
// its plans across Apply calls (getPlan, putPlan): reset drops every
// reference the last call left, and nothing a plan holds may be used after
// Apply returns (the Redis client keeps no command after Exec).
type plan struct {
	ops    []op
	index  map[string]int
	failed cdc.BatchError
	// merge is scratch space for partial before-images.
	merge *cdc.Row
	// strs holds the text of field values: the Redis client takes *string
	// arguments without the allocation that boxing a string in an
	// interface costs, and a row has many fields. It is the block being
	// filled; strBlocks keeps every block for the next use.
	strs      []string
	strBlocks [][]string
	nstrs     int // blocks of strBlocks in use
	// text holds the text of field values that are not strings already
	// (numbers, times): appended to, never rewritten while in use, so the
	// strings that point into it (see textOf) stay valid until reset.
	text       []byte
	textBlocks [][]byte
	ntext      int
	// args holds the argument lists of every command encode builds: one
	// allocation reused across calls instead of one per call.
	args []any
	// chunks are the chunk structs of this use and those kept from earlier
	// ones (nchunks in use).
	chunks  []*chunk
	nchunks int
	// indexPeak is the most keys index held; reset drops an index grown
	// far past what calls need (clearing a map costs its capacity).
	indexPeak int
	// layouts says how fields reads the rows of the layouts this call
	// met twice (see rowFields): at most maxLayouts, the oldest replaced
	// first (next), with seen as scratch space for building one. once is
	// the layout of the last row fields read whose layout it had not met:
	// a row with a layout of its own (decoded from a message naming its
	// columns) is read without building an entry that no other row uses.
	layouts []rowFields
	last    int // the entry of layouts that fields used last
	next    int
	seen    []bool
	once    *cdc.Layout
}

// rowFields is how fields reads the rows of one layout, for one rule and
// one list of event columns: which of the layout's columns become hash
// fields (include/exclude applied), in which order, with which
// description. fields builds it once per layout in an Apply call and then
// reads each row by index, instead of looking every column up by name and
// deciding include/exclude per row (with the key's lookups, a tenth of the
// binlog path's CPU when rows were maps).
//
// It lives no longer than the call: a layout is immutable only while rows
// use it, and a pooled row's own layout is emptied and refilled once its
// batch is acked (cdc.RowPool), so an entry kept across calls could find
// another layout's columns behind the same pointer. In one call the rows
// are those of its events, unchanged until it returns.
type rowFields struct {
	layout *cdc.Layout
	cols   *cdc.Column // the event's Columns: first element and length
	ncols  int
	rule   *rule
	slots  []fieldSlot
}

// fieldSlot is a column of a layout that becomes a hash field when the row
// carries it with a non-NULL value.
type fieldSlot struct {
	at   int         // its index in the layout
	col  *cdc.Column // its description; nil when the event has none
	name *string     // the field name: &col.Name or the layout's name
}

// maxLayouts bounds plan.layouts. A batch holds rows of a few tables,
// each with its layout; rows with a layout of their own (formats whose
// messages name their columns) miss anyway, and replace an entry each.
const maxLayouts = 8

const (
	strBlock  = 4096     // strings per block of plan.strs
	textBlock = 16 << 10 // bytes per block of plan.text
)

func newPlan(n int) *plan {
	return &plan{ops: make([]op, 0, n), index: make(map[string]int, n)}
}

// reset empties pl for the next Apply call, dropping every
// reference to the events and keys of the last one.
func (pl *plan) reset() {
	pl.ops = truncate(pl.ops)
	pl.indexPeak = max(pl.indexPeak, len(pl.index))
	clear(pl.index)
	pl.failed = cdc.BatchError{}
	pl.merge.Reset()
	for _, b := range pl.strBlocks[:pl.nstrs] {
		clear(b[:cap(b)])
	}
	pl.strs, pl.nstrs = nil, 0
	pl.text, pl.ntext = nil, 0
	clear(pl.args)
	pl.args = pl.args[:0]
	for _, c := range pl.chunks[:pl.nchunks] {
		c.reset()
	}
	pl.nchunks = 0
	for i := range pl.layouts {
		rf := &pl.layouts[i]
		clear(rf.slots[:cap(rf.slots)])
		*rf = rowFields{slots: rf.slots[:0]}
	}
	pl.last, pl.next, pl.once = 0, 0, nil
}

// prepare readies a reset plan for n events.
func (pl *plan) prepare(n int) {
	if pl.indexPeak > 4*n+4096 {
		// A batch far larger than this one grew the index: start a map
		// of this call's size instead of clearing the big one each time.
		pl.index, pl.indexPeak = make(map[string]int, n), 0
	}
	pl.ops = slices.Grow(pl.ops, n)
}

// str returns a stable pointer to a copy of s's header.
func (p *plan) str(s string) *string {
	if len(p.strs) == cap(p.strs) {
		// The next block; pointers into the full one stay valid.
		if p.nstrs == len(p.strBlocks) {
			p.strBlocks = append(p.strBlocks, make([]string, 0, strBlock))
		}
		p.strs = p.strBlocks[p.nstrs][:0]
		p.nstrs++
	}
	p.strs = append(p.strs, s)
	return &p.strs[len(p.strs)-1]
}

// nextText starts the next block of p.text.
func (p *plan) nextText() {
	if p.ntext == len(p.textBlocks) {
		p.textBlocks = append(p.textBlocks, make([]byte, 0, textBlock))
	}
	p.text = p.textBlocks[p.ntext][:0]
	p.ntext++
}

// textString appends what add appends to p.text and returns it as a
// string, valid until reset: the text of a version or a side key without
// an allocation of its own.
func (p *plan) textString(add func([]byte) []byte) string {
	if cap(p.text)-len(p.text) < 256 {
		p.nextText()
	}
	at := len(p.text)
	b := add(p.text)
	if cap(b) != cap(p.text) && p.ntext > 0 {
		p.textBlocks[p.ntext-1] = b[:0] // grew: see textOf
	}
	p.text = b
	if len(b) == at {
		return ""
	}
	return unsafe.String(&b[at], len(b)-at)
}

// sideKey is sideKey with the side key's text in p.text.
func (p *plan) sideKey(key, suffix string) (string, bool) {
	var sameSlot bool
	side := p.textString(func(b []byte) []byte {
		b, sameSlot = appendSideKey(b, key, suffix)
		return b
	})
	return side, sameSlot
}

// textOf returns a stable pointer to v's text for col (cdc.FormatText),
// as a command argument (a *string), false for NULL. v is not a string
// (arg and fields pass those as the row holds them); the texts are
// appended to p.text, one allocation per block of rows instead of one per
// value.
func (p *plan) textOf(col *cdc.Column, v cdc.Value) (any, bool) {
	switch x := v.(type) {
	case nil:
		return nil, false
	case cdc.Decimal:
		return p.str(string(x)), true
	case cdc.JSON:
		return p.str(string(x)), true
	case []byte:
		if len(x) > 1<<10 {
			return p.str(string(x)), true // a large BLOB: its own string
		}
	}
	if cap(p.text)-len(p.text) < 64 {
		// The next block; the strings into the full one stay valid.
		p.nextText()
	}
	at := len(p.text)
	b, ok := cdc.AppendText(p.text, col, v)
	if !ok {
		return nil, false
	}
	if cap(b) != cap(p.text) && p.ntext > 0 {
		// A value longer than what was left grew the block by copying,
		// which leaves the bytes already referenced untouched; the larger
		// block replaces it for later uses.
		p.textBlocks[p.ntext-1] = b[:0]
	}
	p.text = b
	if len(b) == at {
		return p.str(""), true
	}
	return p.str(unsafe.String(&b[at], len(b)-at)), true
}

// arg returns the command argument of v's text for col (see textOf), false
// for NULL. A string value is the argument as the row holds it: the
// interface already carries a string the clients write, where textOf
// would copy its header to hand out a *string.
func (p *plan) arg(col *cdc.Column, v cdc.Value) (any, bool) {
	if _, ok := v.(string); ok {
		return v, true
	}
	return p.textOf(col, v)
}

// put records that event i leaves key in state kind. Inside one Apply call
// the last event wins, except that a guarded event older than the one
// already planned loses, as it would if the two were applied one by one.
func (p *plan) put(key string, kind opKind, r *rule, i int, version uint64) {
	if j, ok := p.index[key]; ok {
		o := &p.ops[j]
		o.more = append(o.more, i)
		if version != 0 && o.version != 0 && version < o.version {
			return
		}
		o.kind, o.rule, o.ev, o.version = kind, r, i, version
		return
	}
	p.index[key] = len(p.ops)
	p.ops = append(p.ops, op{key: key, kind: kind, rule: r, ev: i, version: version, first: i})
}

// permanent marks event i as one that can never apply.
func (p *plan) permanent(i int, err error) {
	p.failed.Fail(i, fmt.Errorf("%w: %w", cdc.ErrPermanent, err))
}

// add plans event i.
func (p *plan) add(i int, e *cdc.Event, r *rule) {
	pk := e.PK
	if len(pk) == 0 {
		pk = r.pk
	}
	var version uint64
	if r.versionField != "" {
		version = e.Pos.Version
	}
	switch e.Op {
	case cdc.Insert, cdc.Update:
		if e.After == nil {
			p.permanent(i, fmt.Errorf("%s without an after image", e.Op))
			return
		}
		key, err := p.render(r, e, e.After, pk)
		var oldKey string
		if e.Op == cdc.Update && e.Before != nil && !r.sameKey(e.Before, e.After, pk) {
			before := p.beforeImage(e, r, pk)
			if k, berr := p.render(r, e, before, pk); berr == nil && k != key {
				// The key changed (pk or a key column): the old hash
				// no longer names this row. A before-image whose key
				// columns were NULL named no hash, so nothing to remove.
				oldKey = k
			}
		}
		if oldKey != "" {
			p.put(oldKey, opDelete, r, i, version)
		}
		if err != nil {
			p.permanent(i, err)
			return
		}
		p.put(key, opWrite, r, i, version)
	case cdc.Delete:
		if e.Before == nil {
			p.permanent(i, errors.New("delete without a before image"))
			return
		}
		key, err := p.render(r, e, e.Before, pk)
		if err != nil {
			p.permanent(i, err)
			return
		}
		p.put(key, opDelete, r, i, version)
	default:
		p.permanent(i, fmt.Errorf("unknown op %s", e.Op))
	}
}

// sameKey reports whether before and after surely render the same key:
// every key column of before is missing there (so taken from after, see
// beforeImage) or holds a value equal to after's. It saves rendering the
// old key of the common update that leaves the key alone; false means
// "render both and compare".
func (r *rule) sameKey(before, after *cdc.Row, pk []string) bool {
	for _, c := range r.tmplCols {
		if !sameValue(before, after, c) {
			return false
		}
	}
	if r.usesPK {
		for _, c := range pk {
			if !sameValue(before, after, c) {
				return false
			}
		}
	}
	return true
}

func sameValue(before, after *cdc.Row, col string) bool {
	i, ok := before.Layout().Index(col)
	if !ok {
		return true
	}
	_, b, ok := before.At(i)
	if !ok {
		return true
	}
	a, ok := after.LookupAt(before.Layout(), i, col)
	if !ok {
		return false
	}
	switch b := b.(type) {
	case nil:
		return a == nil
	case int64:
		a, ok := a.(int64)
		return ok && a == b
	case string:
		a, ok := a.(string)
		return ok && a == b
	case uint64:
		a, ok := a.(uint64)
		return ok && a == b
	case cdc.Decimal:
		a, ok := a.(cdc.Decimal)
		return ok && a == b
	case []byte:
		a, ok := a.([]byte)
		return ok && bytes.Equal(a, b)
	case time.Time:
		a, ok := a.(time.Time)
		return ok && a == b
	}
	return false // other types: render and compare
}

// beforeImage returns the row to render the old key from. Some formats
// (Maxwell's "old") carry only the changed columns in the before-image; a
// key column missing there did not change, so it is taken from After.
func (p *plan) beforeImage(e *cdc.Event, r *rule, pk []string) *cdc.Row {
	complete := true
	for _, c := range r.keyColumns(pk) {
		if _, ok := e.Before.Lookup(c); !ok {
			complete = false
			break
		}
	}
	if complete {
		return e.Before
	}
	if p.merge == nil {
		p.merge = cdc.RowOf()
	}
	p.merge.Reset()
	for _, c := range r.keyColumns(pk) {
		if v, ok := e.Before.Lookup(c); ok {
			p.merge.Set(c, v)
		} else if v, ok := e.After.Lookup(c); ok {
			p.merge.Set(c, v)
		}
	}
	return p.merge
}

// render names the hash of row.
func (r *rule) render(e *cdc.Event, row *cdc.Row, pk []string) (string, error) {
	var buf [128]byte
	b, err := r.appendKey(buf[:0], e, row, pk)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// appendKey appends the name of row's hash to b; b is returned unchanged
// with an error.
func (r *rule) appendKey(b []byte, e *cdc.Event, row *cdc.Row, pk []string) ([]byte, error) {
	if r.usesPK && len(pk) == 0 {
		return b, fmt.Errorf("key %q needs {pk} but %s.%s has no primary key in the event or the config", r.tmpl, e.DB, e.Table)
	}
	key, err := r.tmpl.AppendRender(b, keymap.Input{DB: e.DB, Table: e.Table, PK: pk, Row: row, Columns: e.Columns})
	if err != nil {
		return b, fmt.Errorf("render key %q: %w", r.tmpl, err)
	}
	if len(key) == len(b) {
		return b, fmt.Errorf("key %q renders empty", r.tmpl)
	}
	return key, nil
}

// render is rule.render with the key's text in p.text: no allocation of
// its own. It is textString written out: the closure that would carry the
// key's arguments costs a call per row.
func (p *plan) render(r *rule, e *cdc.Event, row *cdc.Row, pk []string) (string, error) {
	if cap(p.text)-len(p.text) < 256 {
		p.nextText()
	}
	at := len(p.text)
	b, err := r.appendKey(p.text, e, row, pk)
	if err != nil {
		return "", err
	}
	if cap(b) != cap(p.text) && p.ntext > 0 {
		p.textBlocks[p.ntext-1] = b[:0] // grew: see textOf
	}
	p.text = b
	return unsafe.String(&b[at], len(b)-at), nil // appendKey fails on an empty key
}

// keyColumns returns the row columns the key reads.
func (r *rule) keyColumns(pk []string) []string {
	if !r.usesPK || len(pk) == 0 {
		return r.tmplCols
	}
	out := make([]string, 0, len(r.tmplCols)+len(pk))
	return append(append(out, r.tmplCols...), pk...)
}

// fields appends the hash field/value pairs of row: its non-NULL columns
// after include/exclude, the ones the event describes in its column order,
// then the others in the row's.
func (p *plan) fields(dst []any, r *rule, e *cdc.Event, row *cdc.Row) []any {
	rf := p.rowFields(r, e, row.Layout())
	if rf == nil {
		return p.fieldsOnce(dst, r, e, row)
	}
	for _, s := range rf.slots {
		_, v, ok := row.At(s.at)
		if !ok {
			continue
		}
		if _, ok := v.(string); ok { // arg, inline: the loop every row takes
			dst = append(dst, s.name, v)
		} else if arg, ok := p.textOf(s.col, v); ok { // NULL: the field is absent
			dst = append(dst, s.name, arg)
		}
	}
	return dst
}

// fieldsOnce is fields for a row whose layout the call has not met yet: the
// same fields in the same order, each column found by name, starting at
// the index after the last one's.
func (p *plan) fieldsOnce(dst []any, r *rule, e *cdc.Event, row *cdc.Row) []any {
	names := row.Layout().Names()
	seen, prev := 0, -1
	for ci := range e.Columns {
		c := &e.Columns[ci]
		at, ok := row.IndexFrom(c.Name, prev+1)
		if !ok {
			continue
		}
		prev = at
		_, v, ok := row.At(at)
		if !ok {
			continue
		}
		seen++
		if !r.keep(c.Name) {
			continue
		}
		if arg, ok := p.arg(c, v); ok { // NULL: the field is absent
			dst = append(dst, &c.Name, arg)
		}
	}
	if seen == row.Len() {
		return dst
	}
	// Columns the event did not describe (or no descriptions at all).
	for i := range names {
		_, v, ok := row.At(i)
		if !ok || !r.keep(names[i]) {
			continue
		}
		if _, described := e.Column(names[i]); described {
			continue
		}
		if arg, ok := p.arg(nil, v); ok {
			dst = append(dst, &names[i], arg)
		}
	}
	return dst
}

// rowFields returns how fields reads rows of layout l for rule r and e's
// columns, building it when the call meets l the second time; nil the
// first time.
func (p *plan) rowFields(r *rule, e *cdc.Event, l *cdc.Layout) *rowFields {
	var cols *cdc.Column
	if len(e.Columns) > 0 {
		cols = &e.Columns[0]
	}
	if p.last < len(p.layouts) {
		if rf := &p.layouts[p.last]; rf.layout == l && rf.cols == cols && rf.ncols == len(e.Columns) && rf.rule == r {
			return rf
		}
	}
	for i := range p.layouts {
		if rf := &p.layouts[i]; rf.layout == l && rf.cols == cols && rf.ncols == len(e.Columns) && rf.rule == r {
			p.last = i
			return rf
		}
	}
	if l != p.once {
		p.once = l
		return nil
	}
	if len(p.layouts) < maxLayouts {
		p.layouts = append(p.layouts, rowFields{})
		p.last = len(p.layouts) - 1
	} else {
		p.last = p.next
		p.next = (p.next + 1) % maxLayouts
	}
	rf := &p.layouts[p.last]
	slots := rf.slots[:0]
	*rf = rowFields{layout: l, cols: cols, ncols: len(e.Columns), rule: r}
	names := l.Names()
	p.seen = append(p.seen[:0], make([]bool, len(names))...)
	prev := -1
	for ci := range e.Columns {
		c := &e.Columns[ci]
		// The columns usually are the layout's, in its order.
		at := prev + 1
		if at >= len(names) || names[at] != c.Name {
			var ok bool
			if at, ok = l.Index(c.Name); !ok {
				continue
			}
		}
		prev = at
		p.seen[at] = true
		if r.keep(c.Name) {
			slots = append(slots, fieldSlot{at: at, col: c, name: &c.Name})
		}
	}
	// Columns the event does not describe (or no descriptions at all).
	for i := range names {
		if !p.seen[i] && r.keep(names[i]) {
			slots = append(slots, fieldSlot{at: i, name: &names[i]})
		}
	}
	rf.slots = slots
	return rf
}

func (r *rule) keep(name string) bool {
	if r.include != nil {
		return r.include[name]
	}
	return !r.exclude[name]
}
