// Package canaljson decodes Alibaba canal's "flat message" JSON
// (canal.mq.flatMessage=true) and the canal-compatible JSON other
// producers write (TiCDC, Tencent CKafka, Flink), one message per call.
//
// A message holds one binlog rows event: data[] carries one row per changed
// row, so a multi-row statement yields several events, in order. Values are
// typed with mysqlType (cdc.ParseColumnType) through the one conversion path
// (cdc.ParseText), undoing canal's renderings (BLOB as ISO-8859-1, ENUM
// index, SET bitmask; see internal/canal). A flat message carries no binlog
// offset, so Pos.Version is 0 and Pos.Text is the transport position.
//
// Events never alias msg.Value. The events of one message (and of later
// messages with the same column types) share their Columns and PK slices,
// and an update's Before and After share unchanged values: treat them as
// read-only.
package canaljson

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/source/decode"
	"github.com/rowsync/rowsync/source/decode/internal/canal"
)

// Decoder decodes canal flat JSON. It is safe for concurrent use.
type Decoder struct {
	opts    decode.Options
	loc     *time.Location
	names   canal.Interner
	schemas canal.Cache[*schema]
}

var _ decode.Decoder = (*Decoder)(nil)

// New returns a canal-json Decoder.
func New(opts decode.Options) (decode.Decoder, error) {
	return &Decoder{opts: opts, loc: opts.Location()}, nil
}

// schema is what a message says about its columns: mysqlType, sqlType and
// pkNames. Messages of one table repeat the same bytes, so it is built once
// per distinct text and shared, read-only, by every event.
type schema struct {
	cols     []cdc.Column
	sqlTypes []int32
	byName   map[string]int
	pk       []string // nil when pkNames is null or absent
	// ordered is cols in the schema source's column order, for the
	// definition it was computed from.
	ordered atomic.Pointer[orderedCols]
	// shape is the member order of the last data row that was given one
	// (see dataRow).
	shape atomic.Pointer[shape]
}

// shape is the member names of a data row, in order, as the layout of the
// rows decoded from such rows, with each member's column: the messages of
// one table list the same members in the same order, so a row is filled
// by position (Row.SetAt) once its names are seen to match, no name
// hashed or looked up. It is never modified once stored.
type shape struct {
	layout *cdc.Layout
	cols   []*cdc.Column
	st     []int32
	// toks is the names as scanner.member reads them, nil when a name
	// has a byte a JSON string must escape; the rows of the next
	// messages are read expecting these names (see message.row).
	toks []token
}

// fits reports whether fs (members of m) names the shape's columns, in
// its order.
func (sh *shape) fits(m *message, fs []field) bool {
	names := sh.layout.Names()
	if len(fs) != len(names) {
		return false
	}
	for j := range fs {
		if string(m.bytes(fs[j].name)) != names[j] {
			return false
		}
	}
	return true
}

// newShape returns the shape of the members fs, nil when they name a
// column twice (a layout holds each name once: such a row is filled by
// name, the last member winning, as it always was).
func (s *schema) newShape(m *message, fs []field) *shape {
	sh := &shape{cols: make([]*cdc.Column, len(fs)), st: make([]int32, len(fs))}
	names := make([]string, len(fs))
	for j := range fs {
		sh.cols[j], sh.st[j] = s.lookup(m.bytes(fs[j].name), j)
		names[j] = sh.cols[j].Name
	}
	var err error
	if sh.layout, err = cdc.NewLayout(names); err != nil {
		return nil
	}
	sh.toks = make([]token, len(names))
	for j, n := range names {
		for k := 0; k < len(n); k++ {
			if c := n[k]; c == '"' || c == '\\' || c < 0x20 {
				sh.toks = nil
				return sh
			}
		}
		sh.toks[j] = newToken(n)
	}
	return sh
}

type orderedCols struct {
	def  *cdc.TableDef
	cols []cdc.Column
}

// columns returns the event columns of db.table: mysqlType's order, or,
// with a schema source that knows the table, the table's own order
// (information_schema's ordinal positions; columns it lacks last), so
// documents keep the field order of the binlog path whatever order the
// producer listed them in.
func (d *Decoder) columns(sch *schema, db, table string) ([]cdc.Column, error) {
	if d.opts.Schemas == nil {
		return sch.cols, nil
	}
	def, err := d.opts.Schemas.Table(context.Background(), db, table, false)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", decode.ErrSchemaUnavailable, err)
	}
	if def == nil {
		return sch.cols, nil
	}
	if o := sch.ordered.Load(); o != nil && o.def == def {
		return o.cols, nil
	}
	rank := func(c cdc.Column) int {
		if i, ok := def.Index(c.Name); ok {
			return i
		}
		return len(def.Columns)
	}
	cols := slices.Clone(sch.cols)
	slices.SortStableFunc(cols, func(a, b cdc.Column) int { return cmp.Compare(rank(a), rank(b)) })
	sch.ordered.Store(&orderedCols{def: def, cols: cols})
	return cols, nil
}

// rowRef locates one row's members in message.fields; fits says they
// name the columns of message.guess, in its order.
type rowRef struct {
	lo, hi int
	null   bool
	fits   bool
}

// field is a member of a row object: where its name and value lie (see
// message.bytes).
type field struct {
	name, val ref
}

// message is one parsed flat message; slices alias the input and are
// reused through a pool.
type message struct {
	// in is the message parsed and esc the unescaped text of its strings
	// with escapes (kept across reset): what the fields' refs index.
	in, esc                   []byte
	database, table, typ, sql []byte
	isDdl                     bool
	es                        int64
	data, old                 []rowRef
	dataNull, oldNull         bool
	fields                    []field
	strLen                    int    // the text length of the string values in fields
	pkNames, mysqlType        []byte // raw JSON, nil when null/absent
	sqlType                   []byte
	key                       []byte
	// seen holds owned copies of the last pkNames, mysqlType and sqlType
	// texts this message parsed (kept across reset): a producer repeats
	// them byte for byte in every message of a table, and a text already
	// scanned once need not be scanned again (see rawField).
	seen [3][]byte
	// isSeen says this message's text k is seen[k]; seenGen counts the
	// changes of seen (from 1 on), so a text seen at one count is the
	// same text at that count later.
	isSeen  [3]bool
	seenGen uint64
	// guess is the shape the data rows are expected to have: the last
	// one of the table the last message resolved to (see row).
	guess *shape
	// top is the top-level member names of the messages parsed, in
	// order, while they were plain (see members).
	top []member
	// last is what the last message this one decoded resolved, for the
	// next one of the same table: the shared caches are not asked again.
	last lastTable
	// vals boxes the typed values (kept across reset: its blocks are
	// shared by the rows of consecutive messages, one allocation per
	// block instead of one per value).
	vals cdc.Arena
	// text holds the text values and position texts of the messages
	// decoded, likewise kept across reset (see Decode).
	text []byte
}

// textBlock is the size of a block of message.text: a few dozen messages'
// text values, so one long-lived value pins little.
const textBlock = 2 << 10

// posDigits bounds what a position text adds to its topic: "/", a
// partition, "@", an offset.
const posDigits = 2 + 11 + 20

// lastTable is one message's schema key (owned copy), database and table
// names (owned copies) and what Decoder d resolved them to.
type lastTable struct {
	d                 *Decoder
	key, dbRaw, tbRaw []byte
	// seenGen is message.seenGen when key was made of the seen texts,
	// else 0.
	seenGen   uint64
	sch       *schema
	db, table string
}

// maxSeen bounds a remembered schema text, so a giant one is not pinned
// in the pool.
const maxSeen = 16 << 10

var messages = sync.Pool{New: func() any { return new(message) }}

// reset readies m for a message. The input and its raw members are nil
// already (drop, which release calls before pooling): assigning the whole struct
// would write every pointer of it again, each a write barrier while the
// GC runs.
func (m *message) reset() {
	m.data = m.data[:0]
	m.old = m.old[:0]
	m.fields = m.fields[:0]
	m.strLen = 0
	m.esc = m.esc[:0]
	m.key = m.key[:0]
	m.isDdl, m.es, m.dataNull, m.oldNull = false, 0, true, true
	m.isSeen = [3]bool{}
}

// release drops references into the input (drop) and pools m.
func (m *message) release() {
	m.drop()
	messages.Put(m)
}

// drop drops references into the input, as reset expects them dropped.
func (m *message) drop() {
	if cap(m.fields) > 1<<16 { // do not pin the memory of a giant message
		m.fields, m.data, m.old = nil, nil, nil
	}
	if cap(m.esc) > maxSeen {
		m.esc = nil
	}
	m.in, m.database, m.table, m.typ, m.sql = nil, nil, nil, nil, nil
	m.pkNames, m.mysqlType, m.sqlType = nil, nil, nil
}

// bytes returns the text r locates in the message parsed.
func (m *message) bytes(r ref) []byte {
	if r.esc {
		return m.esc[r.lo:r.hi]
	}
	return m.in[r.lo:r.hi]
}

func (m *message) parse(b []byte, lim decode.Limits) error {
	s := &scanner{b: b, esc: m.esc[:0]}
	m.in = b
	defer func() { m.esc = s.esc }()
	m.guess = nil
	if sch := m.last.sch; sch != nil {
		if sh := sch.shape.Load(); sh != nil && sh.toks != nil {
			m.guess = sh
		}
	}
	if s.peek() != '{' {
		return fmt.Errorf("not a JSON object")
	}
	var cur curMember // current top-level member, for errors
	if err := m.members(s, lim, &cur); err != nil {
		switch {
		case cur.fast:
			tok := m.top[cur.n].tok.text
			return fmt.Errorf("field %q: %w", tok[1:len(tok)-2], err)
		case cur.key != nil:
			return fmt.Errorf("field %q: %w", cur.key, err)
		}
		return err
	}
	if s.ws(); s.i != len(b) {
		return s.errf("data after the JSON object")
	}
	return nil
}

// The top-level members a flat message has, as read by members.
const (
	fOther byte = iota
	fData
	fOld
	fDatabase
	fTable
	fType
	fSQL
	fIsDdl
	fEs
	fPkNames
	fMysqlType
	fSQLType
)

// memberID returns the top-level member named key.
func memberID(key []byte) byte {
	switch string(key) {
	case "data":
		return fData
	case "old":
		return fOld
	case "database":
		return fDatabase
	case "table":
		return fTable
	case "type":
		return fType
	case "sql":
		return fSQL
	case "isDdl":
		return fIsDdl
	case "es":
		return fEs
	case "pkNames":
		return fPkNames
	case "mysqlType":
		return fMysqlType
	case "sqlType":
		return fSQLType
	}
	return fOther
}

// member is a top-level member name of an earlier message, as
// scanner.member reads it, with its id.
type member struct {
	tok token
	id  byte
}

// maxMembers bounds the member names a message remembers.
const maxMembers = 32

// members reads the top-level object as scanner.object does, each
// member's value by member, keeping the member read last in *cur. A
// producer writes the same
// members in the same order in every message, so the name at each place
// is first tried as the one the last message had there (m.top): the
// input is compared with it, not scanned for the string's end, and its id
// is known.
func (m *message) members(s *scanner, lim decode.Limits, cur *curMember) error {
	if err := s.expect('{'); err != nil {
		return err
	}
	if s.consume('}') {
		return nil
	}
	for n := 0; ; n++ {
		var id byte
		if n < len(m.top) && s.member(&m.top[n].tok) {
			id = m.top[n].id
			cur.n, cur.fast = n, true
		} else {
			r, err := s.strRef()
			if err != nil {
				return err
			}
			key := s.bytes(r)
			id = memberID(key)
			if !r.esc && n <= len(m.top) && n < maxMembers { // a plain name: remembered for the next message
				if n == len(m.top) {
					m.top = append(m.top, member{})
				}
				m.top[n] = member{newToken(string(key)), id}
			}
			if err := s.expect(':'); err != nil {
				return err
			}
			cur.key, cur.fast = key, false
		}
		if err := m.member(s, id, lim); err != nil {
			return err
		}
		if s.consume(',') {
			continue
		}
		return s.expect('}')
	}
}

// member reads the value of the top-level member id.
func (m *message) member(s *scanner, id byte, lim decode.Limits) error {
	var err error
	switch id {
	case fData:
		m.data, m.dataNull, err = m.rows(s, m.data, lim, m.guess)
	case fOld:
		m.old, m.oldNull, err = m.rows(s, m.old, lim, nil)
	case fDatabase:
		m.database, err = strOrNull(s)
	case fTable:
		m.table, err = strOrNull(s)
	case fType:
		m.typ, err = strOrNull(s)
	case fSQL:
		m.sql, err = strOrNull(s)
	case fIsDdl:
		var v span
		if v, err = s.value(); err == nil {
			switch v.kind {
			case kTrue:
				m.isDdl = true
			case kFalse, kNull:
				m.isDdl = false
			default:
				err = fmt.Errorf("not a boolean")
			}
		}
	case fEs:
		var v span
		if v, err = s.value(); err == nil {
			switch v.kind {
			case kNumber, kString:
				if n, ok := digits(v.b); ok {
					m.es = n
				} else if m.es, err = strconv.ParseInt(string(v.b), 10, 64); err != nil {
					// fractional seconds or ms from some producers
					f, ferr := strconv.ParseFloat(string(v.b), 64)
					if ferr != nil || f > 1<<62 || f < 0 {
						err = fmt.Errorf("%q is not a timestamp", v.b)
					} else {
						m.es, err = int64(f), nil
					}
				}
			case kNull:
			default:
				err = fmt.Errorf("not a number")
			}
		}
	case fPkNames:
		m.pkNames, err = m.rawField(s, 0)
	case fMysqlType:
		m.mysqlType, err = m.rawField(s, 1)
	case fSQLType:
		m.sqlType, err = m.rawField(s, 2)
	default:
		err = s.skip(0)
	}
	return err
}

// curMember is the top-level member members read last: the name at
// m.top[n] when it was read as that (fast), else key (nil: none yet).
type curMember struct {
	key  []byte
	n    int
	fast bool
}

// rawField reads an object or array (nil for null) whose text is kept
// raw: pkNames, mysqlType, sqlType. When the input continues with the text
// last read for the same field (seen[k]), that text is taken without
// scanning it again: it is a complete JSON value, and the scanner would
// have read exactly it, since a value's end is decided by its own bytes.
func (m *message) rawField(s *scanner, k int) ([]byte, error) {
	s.ws()
	m.isSeen[k] = false
	if p := m.seen[k]; len(p) > 0 && bytes.HasPrefix(s.b[s.i:], p) {
		s.i += len(p)
		m.isSeen[k] = true
		return s.b[s.i-len(p) : s.i], nil
	}
	v, err := s.value()
	if err != nil || v.kind == kNull {
		return nil, err
	}
	if v.kind != kRaw {
		return nil, fmt.Errorf("not an object or array")
	}
	if len(v.b) <= maxSeen {
		m.seen[k] = append(m.seen[k][:0], v.b...)
		m.seenGen++
		m.isSeen[k] = true
	}
	return v.b, nil
}

// digits returns the value of b when it is 1 to 18 decimal digits, as
// strconv.ParseInt would (cdc.ShortInt, unsigned: no sign).
func digits(b []byte) (int64, bool) {
	return cdc.ShortInt(unsafe.String(unsafe.SliceData(b), len(b)), false)
}

func strOrNull(s *scanner) ([]byte, error) {
	v, err := s.value()
	if err != nil {
		return nil, err
	}
	switch v.kind {
	case kString:
		return v.b, nil
	case kNull:
		return nil, nil
	}
	return nil, fmt.Errorf("not a string")
}

// rows reads an array of row objects (or nulls) into refs, expecting
// rows of shape guess (nil: none). It stops at lim's row cap and at
// MySQL's column limit, before holding more.
func (m *message) rows(s *scanner, refs []rowRef, lim decode.Limits, guess *shape) ([]rowRef, bool, error) {
	refs = refs[:0]
	null, err := s.array(func(i int) error {
		if err := lim.CheckRows(i + 1); err != nil {
			return err
		}
		lo := len(m.fields)
		null, fits, err := m.row(s, i, guess)
		if err != nil {
			return err
		}
		refs = append(refs, rowRef{lo, len(m.fields), null, fits})
		return nil
	})
	return refs, null, err
}

// row reads the row object (or null) i of an array into m.fields, as
// scanner.object would. The rows of a table list the same members in the
// same order, so each name is first tried as the one at its place in
// guess (when not nil): the input is compared with it, not scanned for
// the string's end. fits reports that every name was guess's, in order.
func (m *message) row(s *scanner, i int, guess *shape) (null, fits bool, err error) {
	if s.peek() == 'n' {
		return true, false, s.literal("null")
	}
	if err := s.expect('{'); err != nil {
		return false, false, err
	}
	var toks []token
	if guess != nil {
		toks = guess.toks
	}
	if s.consume('}') {
		return false, guess != nil && len(toks) == 0, nil
	}
	fits = guess != nil
	lo := len(m.fields)
	for j := 0; ; j++ {
		var key ref
		if fits && j < len(toks) && s.member(&toks[j]) {
			key = ref{lo: s.i - len(toks[j].text) + 1, hi: s.i - 2, kind: kString}
		} else {
			fits = false
			if key, err = s.strRef(); err != nil {
				return false, false, err
			}
			if err := s.expect(':'); err != nil {
				return false, false, err
			}
		}
		if n := len(m.fields) - lo + 1; n > decode.MaxColumns {
			return false, false, fmt.Errorf("[%d]: %w", i, decode.CheckColumns(n))
		}
		v, err := s.valueRef()
		if err != nil {
			return false, false, fmt.Errorf("[%d].%s: %w", i, s.bytes(key), err)
		}
		m.fields = append(m.fields, field{key, v})
		if v.kind == kString {
			m.strLen += v.hi - v.lo
		}
		if s.consume(',') {
			continue
		}
		return false, fits && j+1 == len(toks), s.expect('}')
	}
}

// rowOp names the canal event types that carry rows.
func rowOp(typ []byte) (cdc.Op, bool) {
	switch string(typ) {
	case "INSERT":
		return cdc.Insert, true
	case "UPDATE":
		return cdc.Update, true
	case "DELETE":
		return cdc.Delete, true
	}
	return 0, false
}

// otherType reports the canal EventType names (plus TiCDC's watermark)
// that never carry row images.
func otherType(typ []byte) bool {
	switch string(typ) {
	case "CREATE", "ALTER", "ERASE", "QUERY", "TRUNCATE", "RENAME", "CINDEX", "DINDEX", "GTID",
		"XACOMMIT", "XAROLLBACK", "MHEARTBEAT", "TIDB_WATERMARK":
		return true
	}
	return false
}

// Decode implements decode.Decoder.
func (d *Decoder) Decode(msg decode.Message) ([]cdc.Event, error) {
	m := messages.Get().(*message)
	m.reset()
	defer m.release()
	if err := m.parse(msg.Value, d.opts.Limits); err != nil {
		return nil, fmt.Errorf("canal-json: %w", err)
	}
	var up [16]byte // types are matched case-insensitively
	typ := m.typ
	op, isRow := rowOp(typ) // as producers write them, in capitals
	if !isRow && len(typ) <= len(up) {
		n := copy(up[:], typ)
		for k := range n {
			if c := up[k]; c >= 'a' && c <= 'z' {
				up[k] = c - 'a' + 'A'
			}
		}
		typ = up[:n]
		op, isRow = rowOp(typ)
	}
	if m.isDdl || (!isRow && otherType(typ)) {
		if m.isDdl {
			decode.ReportDDL(d.opts, decode.DDL{DB: string(m.database), Table: string(m.table), Type: string(typ),
				SQL: string(m.sql), Commit: canal.CommitTime(m.es), Pos: cdc.Position{Text: msg.PosText()}})
		}
		return nil, nil // schema change or statement marker: no row images
	}
	if !isRow {
		if len(m.typ) == 0 {
			return nil, fmt.Errorf("canal-json: field \"type\": missing")
		}
		return nil, fmt.Errorf("canal-json: field \"type\": unknown event type %q", m.typ)
	}
	if m.dataNull || len(m.data) == 0 {
		return nil, nil // statement-based DML: no row images
	}
	// The schema texts are those the last message resolved when they are
	// the texts remembered (seen) and those were not replaced since;
	// else they are compared whole.
	l := &m.last
	same := l.d == d && bytes.Equal(m.database, l.dbRaw) && bytes.Equal(m.table, l.tbRaw)
	keyed := false
	if seen := m.isSeen[0] && m.isSeen[1] && m.isSeen[2]; same && !(seen && l.seenGen == m.seenGen) {
		m.key = append(append(append(append(append(m.key[:0], m.mysqlType...), 0), m.sqlType...), 0), m.pkNames...)
		keyed, same = true, bytes.Equal(m.key, l.key)
	}
	if !same {
		if !keyed {
			m.key = append(append(append(append(append(m.key[:0], m.mysqlType...), 0), m.sqlType...), 0), m.pkNames...)
		}
		sch, err := d.schemas.Get(m.key, func() (*schema, error) { return buildSchema(m.mysqlType, m.sqlType, m.pkNames) })
		if err != nil {
			return nil, fmt.Errorf("canal-json: %w", err)
		}
		*l = lastTable{key: l.key[:0], dbRaw: l.dbRaw[:0], tbRaw: l.tbRaw[:0],
			sch: sch, db: d.names.Get(m.database), table: d.names.Get(m.table)}
		if len(m.key) <= 3*maxSeen && len(m.database) <= maxSeen && len(m.table) <= maxSeen {
			l.d = d
			if m.isSeen[0] && m.isSeen[1] && m.isSeen[2] {
				l.seenGen = m.seenGen
			}
			l.key = append(l.key, m.key...)
			l.dbRaw = append(l.dbRaw, m.database...)
			l.tbRaw = append(l.tbRaw, m.table...)
		}
	}
	sch, db, table := l.sch, l.db, l.table
	cols, err := d.columns(sch, db, table)
	if err != nil {
		return nil, fmt.Errorf("canal-json: %w", err)
	}
	pk := sch.pk
	if pk == nil && d.opts.KeyColumns != nil {
		pk = d.opts.KeyColumns(db, table)
	}
	commit := canal.CommitTime(m.es)
	// The events go to the room of the caller's slice when it has enough
	// (decode.Message.Events), else to one slice of their own.
	events := msg.Events[len(msg.Events):]
	if cap(events) < len(m.data) {
		events = make([]cdc.Event, 0, len(m.data))
	}
	// The text of the message's string members, and its position text,
	// copied into m.text, a block that the values and the position point
	// into and that later messages continue: one allocation per block
	// instead of one per text value kept (strings, decimals, dates) and
	// one per message. The block has room for all of this message's text
	// before it starts, so it never grows and the strings made in it stay
	// valid; a byte once written is never written again.
	n := len(msg.Topic) + posDigits + m.strLen
	if n > maxSeen {
		// a big message's text is not pinned by the blocks it would
		// share with the messages around it (see cdc.Arena)
		m.vals, m.text = cdc.Arena{}, make([]byte, 0, n)
		defer func() { m.vals, m.text = cdc.Arena{}, nil }()
	} else if cap(m.text)-len(m.text) < n {
		m.text = make([]byte, 0, max(textBlock, n))
	}
	at := len(m.text)
	m.text = msg.AppendPosText(m.text)
	pos := cdc.Position{Text: unsafe.String(&m.text[at], len(m.text)-at)}
	for i, r := range m.data {
		if r.null {
			return nil, fmt.Errorf("canal-json: data[%d]: null row", i)
		}
		// the room may hold a recycled batch's events: each is set whole
		events = append(events, cdc.Event{DB: db, Table: table, Op: op, PK: pk, Columns: cols, Commit: commit, Pos: pos})
		ev := &events[i]
		row, err := d.dataRow(m, sch, m.fields[r.lo:r.hi], r.fits, msg.Rows)
		if err != nil {
			return nil, fmt.Errorf("canal-json: data[%d].%w", i, err)
		}
		switch op {
		case cdc.Insert:
			ev.After = row
		case cdc.Delete:
			ev.Before = row
		case cdc.Update:
			ev.After = row
			// before = data[i] merged with old[i] (old's keys win). old holds
			// the changed columns only (canal; and in multi-row updates also
			// columns changed in earlier rows) or the full row (CKafka).
			// Without old[i] the before image is unknown and stays nil.
			if i < len(m.old) && !m.old[i].null {
				before := msg.Rows.Clone(row)
				if _, err := d.row(m, sch, m.fields[m.old[i].lo:m.old[i].hi], before); err != nil {
					return nil, fmt.Errorf("canal-json: old[%d].%w", i, err)
				}
				ev.Before = before
			}
		}
		img := ev.Image()
		for _, c := range pk {
			if v, ok := img.Lookup(c); !ok || v == nil {
				return nil, fmt.Errorf("canal-json: data[%d]: primary key column %q missing or NULL", i, c)
			}
		}
	}
	return events, nil
}

// dataRow types the members fs of a data row of m into a row from rows,
// as row does: by position into a row of the schema's shape when fs has
// it (a new shape is made and kept when fs has another), else by name.
//
// fits says fs names the columns of m.guess, in order.
func (d *Decoder) dataRow(m *message, sch *schema, fs []field, fits bool, rows *cdc.BatchRows) (*cdc.Row, error) {
	sh := sch.shape.Load()
	if (!fits || sh != m.guess) && (sh == nil || !sh.fits(m, fs)) {
		if sh = sch.newShape(m, fs); sh == nil {
			return d.row(m, sch, fs, rows.Get(len(fs)))
		}
		sch.shape.Store(sh)
	}
	r := rows.Of(sh.layout)
	for j := range fs {
		v, err := d.value(m, sh.cols[j], sh.st[j], fs[j].val)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", sh.cols[j].Name, err)
		}
		r.SetAt(j, v)
	}
	return r, nil
}

// row types the members fs of m into into (a new row when nil), boxing
// the values in m.vals. Text values keep is copied to the end of m.text,
// which has room for all of fs's string members (see value). Errors start
// with the column name, so the caller can prefix "data[i].".
func (d *Decoder) row(m *message, sch *schema, fs []field, into *cdc.Row) (*cdc.Row, error) {
	if into == nil {
		into = new(cdc.Row)
	}
	for j := range fs {
		f := &fs[j]
		col, st := sch.lookup(m.bytes(f.name), j)
		v, err := d.value(m, col, st, f.val)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", col.Name, err)
		}
		into.Set(col.Name, v)
	}
	return into, nil
}

// lookup finds the column named name, trying position j first (rows list
// columns in table order, as mysqlType does).
func (s *schema) lookup(name []byte, j int) (*cdc.Column, int32) {
	if j < len(s.cols) && s.cols[j].Name == string(name) {
		return &s.cols[j], s.sqlTypes[j]
	}
	if k, ok := s.byName[string(name)]; ok {
		return &s.cols[k], s.sqlTypes[k]
	}
	return &cdc.Column{Name: string(name), Precision: -1}, canal.NoSQLType
}

// value types the member r of m, boxed in m.vals. Text a value may keep
// is copied to the end of m.text, which has room for it (see Decode), so
// the strings made there stay valid.
func (d *Decoder) value(m *message, col *cdc.Column, st int32, r ref) (cdc.Value, error) {
	v, text, a := span{m.bytes(r), r.kind}, &m.text, &m.vals
	switch v.kind {
	case kNull:
		return nil, nil
	case kString:
		if len(v.b) == 0 {
			return canal.ValueIn(a, col, st, "", d.loc)
		}
		if col.Invalid == "" {
			// the commonest kinds, as canal.ValueIn converts them
			switch col.Kind {
			case cdc.KindInt, cdc.KindYear, cdc.KindBit:
				if n, ok := digits(v.b); ok {
					return a.Int64(n), nil
				}
			case cdc.KindString:
				return a.String(keep(v.b, text)), nil
			case cdc.KindDate, cdc.KindDateTime, cdc.KindTimestamp:
				// the result keeps the text only when it is the text (a
				// zero date): parsed in place, and again from a copy then
				x, err := canal.ValueIn(a, col, st, unsafe.String(&v.b[0], len(v.b)), d.loc)
				if _, ok := x.(string); ok {
					return canal.ValueIn(a, col, st, keep(v.b, text), d.loc)
				}
				return x, err
			}
		}
		if !canal.Retains(col.Kind) {
			// the result does not keep the text: parse it in place
			return canal.ValueIn(a, col, st, unsafe.String(&v.b[0], len(v.b)), d.loc)
		}
		return canal.ValueIn(a, col, st, keep(v.b, text), d.loc)
	case kNumber:
		// canal writes strings; typed producers (Flink) write numbers
		if col.Kind == cdc.KindUnknown {
			if n, err := strconv.ParseInt(string(v.b), 10, 64); err == nil {
				return a.Int64(n), nil
			}
			if u, err := strconv.ParseUint(string(v.b), 10, 64); err == nil {
				return a.Uint64(u), nil
			}
			f, err := strconv.ParseFloat(string(v.b), 64)
			if err != nil {
				return nil, fmt.Errorf("%q is out of range", v.b)
			}
			return a.Float64(f), nil
		}
		return canal.ValueIn(a, col, st, string(v.b), d.loc)
	case kTrue, kFalse:
		if col.Kind == cdc.KindUnknown || col.Kind == cdc.KindInt || col.Kind == cdc.KindBit {
			if v.kind == kTrue {
				return int64(1), nil
			}
			return int64(0), nil
		}
		if v.kind == kTrue {
			return canal.ValueIn(a, col, st, "true", d.loc)
		}
		return canal.ValueIn(a, col, st, "false", d.loc)
	case kRaw:
		if col.Kind == cdc.KindUnknown || col.Kind == cdc.KindJSON {
			return cdc.JSON(string(v.b)), nil
		}
		return nil, fmt.Errorf("object or array where a %s value belongs", col.Kind)
	}
	return nil, fmt.Errorf("bad value")
}

// keep copies b (not empty) to the end of *text, which has room for it
// (see Decode), and returns the copy.
func keep(b []byte, text *[]byte) string {
	at := len(*text)
	*text = append(*text, b...)
	return unsafe.String(&(*text)[at], len(b))
}

// buildSchema parses mysqlType, sqlType and pkNames (raw JSON or nil).
func buildSchema(mysqlType, sqlType, pkNames []byte) (*schema, error) {
	sch := &schema{byName: map[string]int{}}
	add := func(name string) (int, error) {
		if k, ok := sch.byName[name]; ok {
			return k, nil
		}
		if err := decode.CheckColumns(len(sch.cols) + 1); err != nil {
			return 0, err
		}
		sch.byName[name] = len(sch.cols)
		sch.cols = append(sch.cols, cdc.Column{Name: name, Precision: -1})
		sch.sqlTypes = append(sch.sqlTypes, canal.NoSQLType)
		return len(sch.cols) - 1, nil
	}
	types := map[int]string{}
	if mysqlType != nil {
		s := &scanner{b: mysqlType}
		if _, err := s.object(func(key []byte) error {
			v, err := strOrNull(s)
			if err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
			k, err := add(string(key))
			types[k] = string(v)
			return err
		}); err != nil {
			return nil, fmt.Errorf("field \"mysqlType\": %w", err)
		}
	}
	if sqlType != nil {
		s := &scanner{b: sqlType}
		if _, err := s.object(func(key []byte) error {
			v, err := s.value()
			if err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
			k, err := add(string(key))
			if err != nil {
				return err
			}
			if v.kind == kNull {
				return nil
			}
			n, perr := strconv.ParseInt(string(v.b), 10, 32)
			if v.kind != kNumber || perr != nil {
				return fmt.Errorf("%s: not a java.sql.Types code", key)
			}
			sch.sqlTypes[k] = int32(n)
			return nil
		}); err != nil {
			return nil, fmt.Errorf("field \"sqlType\": %w", err)
		}
	}
	for k := range sch.cols {
		name := sch.cols[k].Name
		if t := types[k]; t != "" {
			sch.cols[k] = cdc.ParseColumnType(name, t)
		}
		if sch.cols[k].Kind == cdc.KindUnknown && sch.sqlTypes[k] != canal.NoSQLType {
			c := canal.ColumnFromSQLType(name, sch.sqlTypes[k])
			c.Type = types[k]
			sch.cols[k] = c
		}
	}
	if pkNames != nil {
		s := &scanner{b: pkNames}
		sch.pk = []string{}
		if _, err := s.array(func(int) error {
			v, err := s.str()
			if err != nil {
				return err
			}
			name := string(v)
			if k, ok := sch.byName[name]; ok {
				name = sch.cols[k].Name
			}
			sch.pk = append(sch.pk, name)
			return nil
		}); err != nil {
			return nil, fmt.Errorf("field \"pkNames\": %w", err)
		}
		if len(sch.pk) == 0 {
			sch.pk = nil // [] says as little as null
		}
	}
	return sch, nil
}
