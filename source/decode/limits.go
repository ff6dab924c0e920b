package decode

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/rowsync/rowsync/cdc"
)

// Limits bound what one message may make rowsync hold. Every byte of a
// message is untrusted: the Kafka and RabbitMQ producers are other systems.
// The zero value of each field means its default.
type Limits struct {
	// MaxMessageBytes rejects a larger message (key and body together)
	// before it is parsed. Default: 16 MiB.
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// MaxRows rejects a message that carries more row changes (canal
	// data[] rows, JSON lines, concatenated Maxwell objects). Decoders
	// stop parsing at the cap, so memory stays bounded. Default: 10000.
	MaxRows int `yaml:"max_rows"`
}

// Defaults of Limits.
const (
	DefaultMaxMessageBytes = 16 << 20
	DefaultMaxRows         = 10000
)

// MySQL's own limits, which no real change exceeds.
const (
	// MaxColumns is the most columns a MySQL table can have.
	MaxColumns = 4096
	// MaxNameChars is the longest identifier MySQL accepts (64 characters).
	MaxNameChars = 64
	// MaxJSONDepth is MySQL's nesting limit for JSON documents.
	MaxJSONDepth = 100
	// maxPosBytes bounds a position's text (a binlog file name and offset,
	// a topic/partition@offset).
	maxPosBytes = 512
)

// WithDefaults returns l with zero fields set to their defaults.
func (l Limits) WithDefaults() Limits {
	if l.MaxMessageBytes <= 0 {
		l.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if l.MaxRows <= 0 {
		l.MaxRows = DefaultMaxRows
	}
	return l
}

// Validate reports negative values, each prefixed by its key.
func (l Limits) Validate() error {
	var errs []error
	if l.MaxMessageBytes < 0 {
		errs = append(errs, errors.New("max_message_bytes: must not be negative"))
	}
	if l.MaxRows < 0 {
		errs = append(errs, errors.New("max_rows: must not be negative"))
	}
	return errors.Join(errs...)
}

// CheckRows is what a decoder calls as it meets the n-th row (n counts from
// 1) of one message, before building it, so a message of a million tiny
// rows is rejected without holding them.
func (l Limits) CheckRows(n int) error {
	if max := l.WithDefaults().MaxRows; n > max {
		return fmt.Errorf("more than %d rows in one message (max_rows)", max)
	}
	return nil
}

// CheckColumns is what a decoder calls when a row or schema reaches n
// columns.
func CheckColumns(n int) error {
	if n > MaxColumns {
		return fmt.Errorf("more than %d columns (MySQL's limit)", MaxColumns)
	}
	return nil
}

// Bounded wraps d with the one validation boundary every format passes: a
// message over opts.Limits.MaxMessageBytes is rejected unparsed, and the
// events d returns are checked by CheckEvents (with opts.KeyColumns). A
// rejection is an error naming the reason, so the message goes to the dead
// letter and the stream goes on.
//
// Unlike CheckEvents alone, the wrapper remembers the last few shared
// layouts (cdc.Layout.Shared, never modified) whose every name it checked,
// and does not check their names again in later messages: a decoder that
// keeps a table's layout (canal-json's shape, the binlog's table map)
// gives every message's rows the same one.
func Bounded(d Decoder, opts Options) Decoder {
	return &bounded{d: d, l: opts.Limits.WithDefaults(), keyColumns: opts.KeyColumns, known: new(knownLayouts)}
}

type bounded struct {
	d          Decoder
	l          Limits
	keyColumns func(db, table string) []string
	known      *knownLayouts
}

// knownLayouts holds the shared layouts whose every name was checked: at
// most len(l), the oldest replaced first, so a stream of ever new layouts
// (hostile or changing messages) costs a check each and holds nothing
// more. A Decoder may be called from several goroutines; the entries are
// read and replaced atomically, and a replacement lost to a race only
// means a later check.
type knownLayouts struct {
	l    [16]atomic.Pointer[cdc.Layout]
	next atomic.Uint32
}

// has reports whether l's names were checked.
func (k *knownLayouts) has(l *cdc.Layout) bool {
	if k == nil || l == nil {
		return false
	}
	for i := range k.l {
		if k.l[i].Load() == l {
			return true
		}
	}
	return false
}

// add records that every name of the shared layout l was checked.
func (k *knownLayouts) add(l *cdc.Layout) {
	if k == nil || !l.Shared() {
		return // a row's own layout changes with the row
	}
	k.l[(k.next.Add(1)-1)%uint32(len(k.l))].Store(l)
}

func (b *bounded) Decode(msg Message) ([]cdc.Event, error) {
	if n := len(msg.Value) + len(msg.Key); n > b.l.MaxMessageBytes {
		return nil, fmt.Errorf("message of %d bytes exceeds max_message_bytes %d", n, b.l.MaxMessageBytes)
	}
	evs, err := b.d.Decode(msg)
	if err != nil {
		return nil, err
	}
	if err := b.l.checkEvents(evs, b.keyColumns, b.known); err != nil {
		return nil, err
	}
	return evs, nil
}

// CheckEvents validates decoded events: at most MaxRows of them; db,
// table and column names valid UTF-8 without control characters and at
// most MaxNameChars long; at most MaxColumns columns; a known op with the
// images it needs; primary-key values present and scalar (never a JSON
// document or a SET, which could turn a key into a query); JSON values
// nested at most MaxJSONDepth deep; the position text printable.
//
// keyColumns (may be nil) gives the configured key of a table, checked in
// place of Event.PK when the event names none.
func (l Limits) CheckEvents(evs []cdc.Event, keyColumns func(db, table string) []string) error {
	return l.checkEvents(evs, keyColumns, nil)
}

// checkEvents is CheckEvents taking the names of the layouts in known
// (may be nil) as checked, and adding the shared layouts it checks whole.
func (l Limits) checkEvents(evs []cdc.Event, keyColumns func(db, table string) []string, known *knownLayouts) error {
	if err := l.CheckRows(len(evs)); err != nil {
		return err
	}
	c := checked{known: known}
	for i := range evs {
		if err := c.event(&evs[i], keyColumns); err != nil {
			if len(evs) > 1 {
				return fmt.Errorf("row %d: %w", i, err)
			}
			return err
		}
	}
	return nil
}

// checked is what CheckEvents already found valid in a message's earlier
// events, which its later events usually share (one table, one position,
// one set of column names): a text equal to one checked, or a slice or
// layout that is the one checked, passes without being walked again.
type checked struct {
	db, table, pos string
	named          bool // db, table and pos are checked
	cols           []cdc.Column
	pk             []string
	// layout is a layout all of whose names were checked (a row that
	// carried every column of it), so any row of it has valid names.
	layout *cdc.Layout
	// known are shared layouts earlier messages checked whole (nil: none).
	known *knownLayouts
}

// event checks ev.
func (c *checked) event(ev *cdc.Event, keyColumns func(db, table string) []string) error {
	if !c.named || ev.DB != c.db || ev.Table != c.table || ev.Pos.Text != c.pos {
		if err := CheckName("database", ev.DB); err != nil {
			return err
		}
		if err := CheckName("table", ev.Table); err != nil {
			return err
		}
		if err := checkText("position", ev.Pos.Text, maxPosBytes); err != nil {
			return err
		}
		c.db, c.table, c.pos, c.named = ev.DB, ev.Table, ev.Pos.Text, true
	}
	switch ev.Op {
	case cdc.Insert, cdc.Update:
		if ev.After == nil {
			return fmt.Errorf("%s without an after image", ev.Op)
		}
	case cdc.Delete:
		if ev.Before == nil {
			return errors.New("delete without a before image")
		}
	default:
		return fmt.Errorf("unknown op %d", ev.Op)
	}
	if cols := ev.Columns; !sameSlice(cols, c.cols) && !c.namedLike(cols, ev.After) && !c.namedLike(cols, ev.Before) {
		if err := CheckColumns(len(cols)); err != nil {
			return err
		}
		for i := range cols {
			if err := CheckName("column", cols[i].Name); err != nil {
				return err
			}
		}
		c.cols = cols
	}
	for _, row := range [2]*cdc.Row{ev.Before, ev.After} {
		if err := c.row(row); err != nil {
			return err
		}
	}
	pk := ev.PK
	if len(pk) == 0 && keyColumns != nil {
		pk = keyColumns(ev.DB, ev.Table) // the pipeline keys on these later
	}
	named := sameSlice(pk, c.pk)
	for _, name := range pk {
		if !named {
			if err := CheckName("primary key column", name); err != nil {
				return err
			}
		}
		vb, okb := ev.Before.Lookup(name)
		va, oka := ev.After.Lookup(name)
		v, ok := va, oka // the value in ev.Image()
		if ev.After == nil {
			v, ok = vb, okb
		}
		if (!ok || v == nil) && len(ev.PK) > 0 {
			return fmt.Errorf("primary key column %q missing or NULL", name)
		}
		if okb && vb != nil && !scalar(vb) {
			return fmt.Errorf("primary key column %q: a %s value is not a scalar key", name, kindOf(vb))
		}
		if oka && va != nil && !scalar(va) {
			return fmt.Errorf("primary key column %q: a %s value is not a scalar key", name, kindOf(va))
		}
	}
	c.pk = pk
	return nil
}

// namedLike reports whether cols name the columns of row's layout, in its
// order, and that layout's names are known to be valid: so are cols'. A
// decoder's event columns and row layout are usually the same names,
// often the same strings (a compare then only compares pointers).
func (c *checked) namedLike(cols []cdc.Column, row *cdc.Row) bool {
	l := row.Layout()
	if l == nil || len(cols) != l.Len() || !c.known.has(l) {
		return false
	}
	names := l.Names()
	for i := range cols {
		if cols[i].Name != names[i] {
			return false
		}
	}
	return true
}

// row checks row's column count, names and JSON values, walking it by
// index.
func (c *checked) row(row *cdc.Row) error {
	if err := CheckColumns(row.Len()); err != nil {
		return err
	}
	named := row.Layout() == c.layout && c.layout != nil
	if !named && c.known.has(row.Layout()) {
		named, c.layout = true, row.Layout()
	}
	for i := range row.Width() {
		name, v, ok := row.At(i)
		if !ok {
			continue
		}
		if !named {
			if err := CheckName("column", name); err != nil {
				return err
			}
		}
		if j, ok := v.(cdc.JSON); ok {
			if err := checkJSONDepth(string(j)); err != nil {
				return fmt.Errorf("column %s: %w", name, err)
			}
		}
	}
	if !named && row.Len() == row.Layout().Len() && row.Len() > 0 {
		c.layout = row.Layout() // every name of it was checked
		c.known.add(c.layout)
	}
	return nil
}

// sameSlice reports whether a and b are one slice (same start and
// length), so checking one checks the other.
func sameSlice[T any](a, b []T) bool {
	return len(a) > 0 && len(a) == len(b) && &a[0] == &b[0]
}

func kindOf(v cdc.Value) string {
	switch v.(type) {
	case cdc.JSON:
		return "JSON"
	case cdc.Set:
		return "SET"
	}
	return fmt.Sprintf("%T", v)
}

// scalar reports whether v can be a primary-key value: a number, text,
// bytes or a temporal value; never a document, an array or a set.
func scalar(v cdc.Value) bool {
	switch v.(type) {
	case int64, uint64, float64, cdc.Decimal, string, []byte, time.Time, time.Duration:
		return true
	}
	return false
}

// CheckName reports whether name is an acceptable identifier of kind
// ("database", "table", "column"): valid UTF-8, no control characters, at
// most MaxNameChars characters. Empty names pass (a format may omit them;
// the caller decides whether it needs one).
func CheckName(kind, name string) error {
	if len(name) <= MaxNameChars && printableASCII(name) { // the common case in one pass
		return nil
	}
	if utf8.RuneCountInString(name) > MaxNameChars {
		return fmt.Errorf("%s name %.*q... is longer than MySQL's %d characters", kind, MaxNameChars, name, MaxNameChars)
	}
	return checkText(kind+" name", name, 4*MaxNameChars)
}

func checkText(what, s string, maxBytes int) error {
	if printableASCII(s) && len(s) <= maxBytes {
		return nil
	}
	if len(s) > maxBytes {
		return fmt.Errorf("%s of %d bytes is too long (max %d)", what, len(s), maxBytes)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s %q is not valid UTF-8", what, s)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return fmt.Errorf("%s %q holds a control character", what, s)
		}
		if r == utf8.RuneError {
			// what a JSON decoder makes of invalid UTF-8
			return fmt.Errorf("%s %q holds U+FFFD (invalid UTF-8 in the message)", what, s)
		}
	}
	return nil
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}

// checkJSONDepth rejects a JSON text nested deeper than MySQL allows. It
// only counts brackets outside strings; the text's grammar is the
// decoder's business.
func checkJSONDepth(s string) error {
	depth, inString, escaped := 0, false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			if depth++; depth > MaxJSONDepth {
				return fmt.Errorf("JSON nested deeper than MySQL's %d levels", MaxJSONDepth)
			}
		case c == ']' || c == '}':
			depth--
		}
	}
	return nil
}
