// Package canalpb decodes Alibaba canal's protobuf messages: the MQ value
// of canal.mq.flatMessage=false (Kafka, RocketMQ, RabbitMQ) and the GET
// response of the TCP client protocol, with or without its 4-byte length
// prefix.
//
// The wire layout (canal's CanalProtocol.proto and EntryProtocol.proto) is
// read field by field with protowire; no generated code. A value is a
// Packet{type=MESSAGES, body=Messages{batch_id, messages=[Entry...]}}. Two
// producer paths exist: the default "raw" path writes 18 07 2A … by hand,
// always with batch_id and keeping transaction BEGIN/END entries; the
// non-raw path is a proto3 Packet with version=1 and no batch_id. Both
// decode the same way here.
//
// Every DML entry carries the binlog file and start offset of its rows
// event, so events get a monotonic Pos.Version (cdc.BinlogPosVersion) that
// sinks use to skip stale writes.
//
// Column.updated flags are not used: canal sends full before and after
// images (binlog_row_image=FULL), and sinks replace whole rows. Compressed
// packets (ZLIB, GZIP, LZF) are rejected, as canal's own MQ consumer does.
//
// Events never alias msg.Value. The events of one entry share their Columns
// and PK slices: treat them as read-only.
package canalpb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unsafe"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/source/decode"
	"github.com/rowsync/rowsync/source/decode/internal/canal"
)

// Decoder decodes canal protobuf packets. It is safe for concurrent use.
type Decoder struct {
	opts    decode.Options
	loc     *time.Location
	names   canal.Interner
	columns canal.Cache[*cdc.Column]
}

var _ decode.Decoder = (*Decoder)(nil)

// New returns a canal-protobuf Decoder.
func New(opts decode.Options) (decode.Decoder, error) {
	return &Decoder{opts: opts, loc: opts.Location()}, nil
}

// Enum values of the canal protocol.
const (
	packetMessages = 7
	compressNone   = 1

	// EntryType: 1 TRANSACTIONBEGIN, 2 ROWDATA, 3 TRANSACTIONEND,
	// 4 HEARTBEAT, 5 GTIDLOG
	entryRowData = 2

	evInsert = 1
	evUpdate = 2
	evDelete = 3
)

// eventTypeNames are canal's EventType names, for DDL notes and errors.
var eventTypeNames = map[uint64]string{1: "INSERT", 2: "UPDATE", 3: "DELETE", 4: "CREATE", 5: "ALTER",
	6: "ERASE", 7: "QUERY", 8: "TRUNCATE", 9: "RENAME", 10: "CINDEX", 11: "DINDEX", 12: "GTID",
	13: "XACOMMIT", 14: "XAROLLBACK", 15: "MHEARTBEAT"}

// Decode implements decode.Decoder.
func (d *Decoder) Decode(msg decode.Message) ([]cdc.Event, error) {
	b := msg.Value
	// TCP frame: a 4-byte big-endian length, then the Packet. A Packet never
	// starts with 0x00 (field number 0 is invalid), so the prefix is unambiguous.
	if len(b) >= 4 && b[0] == 0 && int(binary.BigEndian.Uint32(b)) == len(b)-4 {
		b = b[4:]
	}
	body, err := packetBody(b)
	if err != nil {
		return nil, fmt.Errorf("canal-protobuf: packet: %w", err)
	}
	var events []cdc.Event
	i := 0
	err = fields(body, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		switch num {
		case 1: // batch_id: not needed; acks follow the transport position
			return wantType(typ, protowire.VarintType)
		case 2:
			if err := wantType(typ, protowire.BytesType); err != nil {
				return err
			}
			evs, err := d.entry(v, &msg, events)
			if err != nil {
				return fmt.Errorf("entry[%d]: %w", i, err)
			}
			events = evs
			i++
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("canal-protobuf: messages: %w", err)
	}
	return events, nil
}

// packetBody checks the Packet wrapper and returns its Messages body.
func packetBody(b []byte) ([]byte, error) {
	if len(b) == 0 {
		return nil, errors.New("empty")
	}
	var body []byte
	typ, comp := uint64(0), uint64(0)
	err := fields(b, func(num protowire.Number, wt protowire.Type, v []byte, n uint64) error {
		switch num {
		case 1, 2: // magic_number, version: informative only
			return wantType(wt, protowire.VarintType)
		case 3:
			typ = n
			return wantType(wt, protowire.VarintType)
		case 4:
			comp = n
			return wantType(wt, protowire.VarintType)
		case 5:
			body = v
			return wantType(wt, protowire.BytesType)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if typ != packetMessages {
		return nil, fmt.Errorf("type %d, want MESSAGES (7)", typ)
	}
	if comp != 0 && comp != compressNone {
		return nil, fmt.Errorf("compression %d not supported (only NONE)", comp)
	}
	return body, nil
}

// header is the part of Entry.Header the events need.
type header struct {
	file          []byte
	offset        int64
	executeTime   int64
	schema, table []byte
	eventType     uint64 // 0 = absent
}

func parseHeader(b []byte) (header, error) {
	var h header
	err := fields(b, func(num protowire.Number, wt protowire.Type, v []byte, n uint64) error {
		switch num {
		case 2:
			h.file = v
			return wantType(wt, protowire.BytesType)
		case 3:
			h.offset = int64(n)
			return wantType(wt, protowire.VarintType)
		case 6:
			h.executeTime = int64(n)
			return wantType(wt, protowire.VarintType)
		case 8:
			h.schema = v
			return wantType(wt, protowire.BytesType)
		case 9:
			h.table = v
			return wantType(wt, protowire.BytesType)
		case 11:
			h.eventType = n
			return wantType(wt, protowire.VarintType)
		}
		return nil
	})
	return h, err
}

// entry appends the row events of one serialized Entry to events.
func (d *Decoder) entry(b []byte, msg *decode.Message, events []cdc.Event) ([]cdc.Event, error) {
	var hdr, store []byte
	entryType := uint64(entryRowData) // proto2 default
	err := fields(b, func(num protowire.Number, wt protowire.Type, v []byte, n uint64) error {
		switch num {
		case 1:
			hdr = v
			return wantType(wt, protowire.BytesType)
		case 2:
			entryType = n
			return wantType(wt, protowire.VarintType)
		case 3:
			store = v
			return wantType(wt, protowire.BytesType)
		}
		return nil
	})
	if err != nil {
		return events, err
	}
	// Switch on entryType before touching storeValue: only ROWDATA holds a
	// RowChange. BEGIN/END (kept on the raw path), heartbeats, GTID logs and
	// types newer than this decoder carry no row change.
	if entryType != entryRowData {
		return events, nil
	}
	h, err := parseHeader(hdr)
	if err != nil {
		return events, fmt.Errorf("header: %w", err)
	}
	rc, err := parseRowChange(store, d.opts.Limits)
	if err != nil {
		return events, fmt.Errorf("rowChange: %w", err)
	}
	evType := rc.eventType
	if evType == 0 {
		evType = h.eventType
	}
	if evType == 0 {
		evType = evUpdate // proto2 default
	}
	pos := cdc.Position{Text: msg.PosText()}
	if len(h.file) > 0 {
		pos.Text = string(h.file) + ":" + strconv.FormatInt(h.offset, 10)
		if h.offset >= 0 {
			pos.Version = cdc.BinlogPosVersion(string(h.file), uint64(h.offset))
		}
	}
	commit := canal.CommitTime(h.executeTime)
	if rc.isDdl {
		db := h.schema
		if len(db) == 0 {
			db = rc.ddlSchema
		}
		decode.ReportDDL(d.opts, decode.DDL{DB: string(db), Table: string(h.table), Type: eventTypeNames[evType],
			SQL: string(rc.sql), Commit: commit, Pos: pos})
		return events, nil
	}
	var op cdc.Op
	switch evType {
	case evInsert:
		op = cdc.Insert
	case evUpdate:
		op = cdc.Update
	case evDelete:
		op = cdc.Delete
	default:
		if _, ok := eventTypeNames[evType]; ok {
			return events, nil // QUERY, GTID, XA markers: no row images
		}
		return events, fmt.Errorf("unknown event type %d", evType)
	}
	if len(rc.rows) == 0 {
		return events, nil
	}
	if err := d.opts.Limits.CheckRows(len(events) + len(rc.rows)); err != nil {
		return events, err // counted over every entry of the packet
	}
	db, table := d.names.Get(h.schema), d.names.Get(h.table)
	var cols []cdc.Column
	var pk []string
	var before, after []column
	for i, rb := range rc.rows {
		before, after, err = parseRowData(rb, before[:0], after[:0])
		if err != nil {
			return events, fmt.Errorf("rowDatas[%d]: %w", i, err)
		}
		ev := cdc.Event{DB: db, Table: table, Op: op, Commit: commit, Pos: pos}
		img := after
		if op == cdc.Delete {
			img = before
		}
		if len(img) == 0 {
			return events, fmt.Errorf("rowDatas[%d]: %s without %s columns", i, op, map[bool]string{true: "before", false: "after"}[op == cdc.Delete])
		}
		if i == 0 {
			// Columns and key from the first row, as canal's flat converter does.
			cols = make([]cdc.Column, len(img))
			for j := range img {
				c, err := d.column(&img[j])
				if err != nil {
					return events, fmt.Errorf("rowDatas[%d].%s: %w", i, img[j].name, err)
				}
				cols[j] = *c
				if img[j].isKey {
					pk = append(pk, c.Name)
				}
			}
			if pk == nil && d.opts.KeyColumns != nil {
				pk = d.opts.KeyColumns(db, table)
			}
		}
		ev.Columns, ev.PK = cols, pk
		if len(after) > 0 && op != cdc.Delete {
			if ev.After, err = d.row(after, msg.Rows); err != nil {
				return events, fmt.Errorf("rowDatas[%d].afterColumns.%w", i, err)
			}
		}
		if len(before) > 0 && op != cdc.Insert {
			if ev.Before, err = d.row(before, msg.Rows); err != nil {
				return events, fmt.Errorf("rowDatas[%d].beforeColumns.%w", i, err)
			}
		}
		image := ev.Image()
		for _, c := range pk {
			if v, ok := image.Lookup(c); !ok || v == nil {
				return events, fmt.Errorf("rowDatas[%d]: primary key column %q missing or NULL", i, c)
			}
		}
		events = append(events, ev)
	}
	return events, nil
}

type rowChange struct {
	eventType uint64
	isDdl     bool
	sql       []byte
	ddlSchema []byte
	rows      [][]byte
}

func parseRowChange(b []byte, lim decode.Limits) (rowChange, error) {
	var rc rowChange
	err := fields(b, func(num protowire.Number, wt protowire.Type, v []byte, n uint64) error {
		switch num {
		case 2:
			rc.eventType = n
			return wantType(wt, protowire.VarintType)
		case 10:
			rc.isDdl = n != 0
			return wantType(wt, protowire.VarintType)
		case 11:
			rc.sql = v
			return wantType(wt, protowire.BytesType)
		case 12:
			if err := lim.CheckRows(len(rc.rows) + 1); err != nil {
				return err
			}
			rc.rows = append(rc.rows, v)
			return wantType(wt, protowire.BytesType)
		case 14:
			rc.ddlSchema = v
			return wantType(wt, protowire.BytesType)
		}
		return nil
	})
	return rc, err
}

// column is one Column as read from the wire; slices alias the input.
type column struct {
	name, mysqlType, value []byte
	sqlType                int32
	isKey, isNull, updated bool
}

func parseRowData(b []byte, before, after []column) ([]column, []column, error) {
	err := fields(b, func(num protowire.Number, wt protowire.Type, v []byte, _ uint64) error {
		if num != 1 && num != 2 {
			return nil
		}
		if err := wantType(wt, protowire.BytesType); err != nil {
			return err
		}
		if err := decode.CheckColumns(max(len(before), len(after)) + 1); err != nil {
			return err
		}
		c, err := parseColumn(v)
		if err != nil {
			return fmt.Errorf("column %d: %w", len(before)+len(after), err)
		}
		if num == 1 {
			before = append(before, c)
		} else {
			after = append(after, c)
		}
		return nil
	})
	return before, after, err
}

func parseColumn(b []byte) (column, error) {
	c := column{sqlType: canal.NoSQLType}
	err := fields(b, func(num protowire.Number, wt protowire.Type, v []byte, n uint64) error {
		switch num {
		case 2:
			c.sqlType = int32(int64(n)) // negative codes are 10-byte varints
			return wantType(wt, protowire.VarintType)
		case 3:
			c.name = v
			return wantType(wt, protowire.BytesType)
		case 4:
			c.isKey = n != 0
			return wantType(wt, protowire.VarintType)
		case 5:
			c.updated = n != 0
			return wantType(wt, protowire.VarintType)
		case 6:
			c.isNull = n != 0
			return wantType(wt, protowire.VarintType)
		case 8:
			c.value = v
			return wantType(wt, protowire.BytesType)
		case 10:
			c.mysqlType = v
			return wantType(wt, protowire.BytesType)
		}
		return nil
	})
	if err == nil && len(c.name) == 0 {
		err = errors.New("column without a name")
	}
	return c, err
}

// column returns the parsed type of c, cached by name and MySQL type.
func (d *Decoder) column(c *column) (*cdc.Column, error) {
	if len(c.mysqlType) == 0 {
		col := canal.ColumnFromSQLType(string(c.name), c.sqlType)
		return &col, nil
	}
	key := make([]byte, 0, 64)
	key = append(append(append(key, c.name...), 0), c.mysqlType...)
	return d.columns.Get(key, func() (*cdc.Column, error) {
		col := cdc.ParseColumnType(string(c.name), string(c.mysqlType))
		return &col, nil
	})
}

// row types an image's columns into a row from rows.
func (d *Decoder) row(cols []column, rows *cdc.BatchRows) (*cdc.Row, error) {
	row := rows.Get(len(cols))
	for j := range cols {
		c := &cols[j]
		col, err := d.column(c)
		if err != nil {
			return nil, err
		}
		if c.isNull {
			row.Set(col.Name, nil)
			continue
		}
		text := ""
		if len(c.value) > 0 {
			if canal.Retains(col.Kind) {
				text = string(c.value)
			} else {
				// the result does not keep the text: parse it in place
				text = unsafe.String(&c.value[0], len(c.value))
			}
		}
		v, err := canal.Value(col, c.sqlType, text, d.loc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", col.Name, err)
		}
		row.Set(col.Name, v)
	}
	return row, nil
}

// fields walks the fields of one message, calling fn with the bytes of
// length-delimited fields and the number of varints; fixed-size and group
// fields are skipped. Malformed input is an error, never a panic.
func fields(b []byte, fn func(num protowire.Number, typ protowire.Type, v []byte, n uint64) error) error {
	for len(b) > 0 {
		num, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return protowire.ParseError(l)
		}
		b = b[l:]
		var v []byte
		var n uint64
		switch typ {
		case protowire.VarintType:
			n, l = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			v, l = protowire.ConsumeBytes(b)
		default:
			l = protowire.ConsumeFieldValue(num, typ, b)
		}
		if l < 0 {
			return fmt.Errorf("field %d: %w", num, protowire.ParseError(l))
		}
		b = b[l:]
		if err := fn(num, typ, v, n); err != nil {
			if errors.Is(err, errWireType) {
				return fmt.Errorf("field %d: %w", num, err)
			}
			return err
		}
	}
	return nil
}

var errWireType = errors.New("wrong wire type")

func wantType(got, want protowire.Type) error {
	if got != want {
		return fmt.Errorf("%w %d, want %d", errWireType, got, want)
	}
	return nil
}
