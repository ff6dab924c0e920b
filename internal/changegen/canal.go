package changegen

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/rowsync/rowsync/cdc"
)

// canalText is the text canal prints for a value of col (spec table 1.4),
// and false for NULL.
func canalText(col *cdc.Column, v cdc.Value) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", false
	case float64:
		return javaDouble(x), true
	case []byte:
		r := make([]rune, len(x)) // ISO-8859-1: one code point per byte
		for i, b := range x {
			r[i] = rune(b)
		}
		return string(r), true
	case time.Time:
		if col.Kind == cdc.KindDate {
			return x.Format("2006-01-02"), true
		}
		s := x.Format("2006-01-02 15:04:05")
		if col.Precision > 0 {
			s += "." + strconv.Itoa(1e9 + x.Nanosecond())[1:1+col.Precision]
		}
		return s, true
	case string:
		if col.Kind == cdc.KindEnum {
			return strconv.Itoa(slices.Index(col.Elems, x) + 1), true
		}
		return x, true
	case cdc.Set:
		var mask uint64
		for _, l := range x {
			mask |= 1 << slices.Index(col.Elems, l)
		}
		return strconv.FormatUint(mask, 10), true
	}
	return cdc.FormatText(col, v)
}

// javaDouble prints f as Java's Double.toString does: plain with at least
// one fraction digit for 1e-3 ≤ |f| < 1e7, else "1.0E10" style.
func javaDouble(f float64) string {
	abs := math.Abs(f)
	if f == 0 || (abs >= 1e-3 && abs < 1e7) {
		s := strconv.FormatFloat(f, 'f', -1, 64)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s
	}
	s := strconv.FormatFloat(f, 'E', -1, 64) // 1E+10, 1.5E-07
	mant, exp, _ := strings.Cut(s, "E")
	if !strings.Contains(mant, ".") {
		mant += ".0"
	}
	e, _ := strconv.Atoi(exp)
	return mant + "E" + strconv.Itoa(e)
}

// canalSQLType is the java.sql.Types code canal writes for a value of col.
func canalSQLType(col *cdc.Column, v cdc.Value) int32 {
	switch col.Kind {
	case cdc.KindInt:
		if _, big := v.(uint64); big {
			return 3 // BIGINT UNSIGNED above the signed range: DECIMAL
		}
		switch col.IntBytes {
		case 1:
			return -6
		case 2:
			return 5
		case 8:
			return -5
		}
		return 4
	case cdc.KindDecimal:
		return 3
	case cdc.KindFloat:
		return 7
	case cdc.KindDouble:
		return 8
	case cdc.KindDate:
		return 91
	case cdc.KindDateTime, cdc.KindTimestamp:
		return 93
	case cdc.KindTime:
		return 92
	case cdc.KindBytes:
		return 2004
	case cdc.KindEnum:
		return 4
	case cdc.KindSet:
		if v == nil {
			return 2004
		}
		return -7
	case cdc.KindString:
		if strings.Contains(col.Type, "text") {
			return 2005
		}
	}
	return 12 // VARCHAR, JSON, YEAR
}

// canalFlat is canal's FlatMessage; encoding/json sorts nothing, so the
// fields are declared in fastjson's (alphabetical) order. The row maps and
// mysqlType/sqlType are LinkedHashMaps in canal, in table order: they are
// written as ordered objects.
type canalFlat struct {
	Data      []json.RawMessage `json:"data"`
	Database  string            `json:"database"`
	Es        int64             `json:"es"`
	Gtid      string            `json:"gtid"`
	ID        int64             `json:"id"`
	IsDdl     bool              `json:"isDdl"`
	MysqlType json.RawMessage   `json:"mysqlType"`
	Old       []json.RawMessage `json:"old"`
	PkNames   []string          `json:"pkNames"`
	SQL       string            `json:"sql"`
	SQLType   json.RawMessage   `json:"sqlType"`
	Table     string            `json:"table"`
	Ts        int64             `json:"ts"`
	Type      string            `json:"type"`
}

// canalRow is the canal text of every column of row, in table order; nil
// for NULL.
func canalRow(t *Table, row *cdc.Row) []*string {
	out := make([]*string, len(t.cols))
	for i := range t.cols {
		c := &t.cols[i]
		if s, ok := canalText(c, row.Get(c.Name)); ok {
			out[i] = &s
		}
	}
	return out
}

// canalObject writes {name: value} for the columns keep selects, in table
// order; value(i) is the JSON of column i.
func canalObject(t *Table, keep func(i int) bool, value func(i int) []byte) json.RawMessage {
	var b bytes.Buffer
	b.WriteByte('{')
	first := true
	for i := range t.cols {
		if keep != nil && !keep(i) {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.Write(jsonString(t.cols[i].Name))
		b.WriteByte(':')
		b.Write(value(i))
	}
	b.WriteByte('}')
	return b.Bytes()
}

func canalValue(v *string) []byte {
	if v == nil {
		return []byte("null")
	}
	return jsonString(*v)
}

// CanalJSON encodes c as one canal flat message (canal.mq.flatMessage=true,
// one row per message as with partitionHash on the primary key). An UPDATE
// carries in old the previous values of the changed columns only; a pk
// change is one UPDATE, as canal sends it.
func CanalJSON(c *Change) []byte {
	t := c.Table
	m := canalFlat{Database: t.DB, Table: t.Name, Es: c.Commit.UnixMilli(), ID: int64(c.Seq/64 + 1),
		PkNames: t.PK, Ts: c.Commit.UnixMilli() + 7}
	img := c.Image()
	m.MysqlType = canalObject(t, nil, func(i int) []byte { return jsonString(t.Defs[i].Type) })
	m.SQLType = canalObject(t, nil, func(i int) []byte {
		return strconv.AppendInt(nil, int64(canalSQLType(&t.cols[i], img.Get(t.cols[i].Name))), 10)
	})
	after := canalRow(t, img)
	m.Data = []json.RawMessage{canalObject(t, nil, func(i int) []byte { return canalValue(after[i]) })}
	switch c.Op {
	case cdc.Insert:
		m.Type = "INSERT"
	case cdc.Delete:
		m.Type = "DELETE"
	case cdc.Update:
		m.Type = "UPDATE"
		before := canalRow(t, c.Before)
		changed := func(i int) bool {
			a, b := after[i], before[i]
			return (a == nil) != (b == nil) || a != nil && *a != *b
		}
		m.Old = []json.RawMessage{canalObject(t, changed, func(i int) []byte { return canalValue(before[i]) })}
	}
	b, err := json.Marshal(&m)
	if err != nil {
		panic(err) // only strings and numbers: cannot fail
	}
	return b
}

// protobuf field builders, written the way canal's proto2 Java writer
// does: every field set, zero values included.

func pbVarint(b []byte, num protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func pbBytes(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func pbString(b []byte, num protowire.Number, v string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, v)
}

func pbBool(b []byte, num protowire.Number, v bool) []byte {
	if v {
		return pbVarint(b, num, 1)
	}
	return pbVarint(b, num, 0)
}

// pbColumns encodes row as canal Column messages; changed is nil for
// before images (updated=false) and INSERT after images (updated=true).
func pbColumns(b []byte, field protowire.Number, t *Table, row *cdc.Row, updated func(string) bool) []byte {
	for i := range t.cols {
		col := &t.cols[i]
		v := row.Get(col.Name)
		var cb []byte
		cb = pbVarint(cb, 1, uint64(i))
		cb = pbVarint(cb, 2, uint64(int64(canalSQLType(col, v)))) // negative: 10-byte varint
		cb = pbString(cb, 3, col.Name)
		cb = pbBool(cb, 4, t.isPK(col.Name))
		cb = pbBool(cb, 5, updated(col.Name))
		text, ok := canalText(col, v)
		cb = pbBool(cb, 6, !ok)
		if ok {
			cb = pbString(cb, 8, text)
		}
		cb = pbString(cb, 10, t.Defs[i].Type)
		b = pbBytes(b, field, cb)
	}
	return b
}

func pbHeader(file string, offset uint64, execMs int64, db, table string, evType uint64) []byte {
	var h []byte
	h = pbVarint(h, 1, 1)
	h = pbString(h, 2, file)
	h = pbVarint(h, 3, offset)
	h = pbVarint(h, 4, 1)
	h = pbString(h, 5, "UTF-8")
	h = pbVarint(h, 6, uint64(execMs))
	h = pbVarint(h, 7, 2) // MYSQL
	h = pbString(h, 8, db)
	h = pbString(h, 9, table)
	h = pbVarint(h, 10, 200)
	if evType != 0 {
		h = pbVarint(h, 11, evType)
	}
	return h
}

func pbEntry(hdr []byte, entryType uint64, store []byte) []byte {
	var e []byte
	e = pbBytes(e, 1, hdr)
	e = pbVarint(e, 2, entryType)
	return pbBytes(e, 3, store)
}

// CanalProtobuf encodes c as a canal protobuf MQ value on the raw path
// (flatMessage=false, canal.instance.memory.rawEntry=true): a Packet with
// batch_id and the transaction's BEGIN, ROWDATA and END entries. The
// entry's header carries the change's binlog file and offset.
func CanalProtobuf(c *Change) []byte {
	t := c.Table
	ms := c.Commit.UnixMilli()
	off := c.Offset()
	var evType uint64
	switch c.Op {
	case cdc.Insert:
		evType = 1
	case cdc.Update:
		evType = 2
	case cdc.Delete:
		evType = 3
	}
	var rd []byte
	switch c.Op {
	case cdc.Insert:
		rd = pbColumns(rd, 2, t, c.After, func(string) bool { return true })
	case cdc.Delete:
		rd = pbColumns(rd, 1, t, c.Before, func(string) bool { return false })
	case cdc.Update:
		rd = pbColumns(rd, 1, t, c.Before, func(string) bool { return false })
		rd = pbColumns(rd, 2, t, c.After, func(name string) bool {
			col := t.Column(name)
			a, aok := canalText(col, c.After.Get(name))
			b, bok := canalText(col, c.Before.Get(name))
			return a != b || aok != bok
		})
	}
	var rc []byte
	rc = pbVarint(rc, 1, 77) // tableId
	rc = pbVarint(rc, 2, evType)
	rc = pbBool(rc, 10, false)
	rc = pbString(rc, 11, "")
	rc = pbBytes(rc, 12, rd)
	rowEntry := pbEntry(pbHeader(BinlogFile, off+40, ms, t.DB, t.Name, evType), 2, rc)

	begin := pbEntry(pbHeader(BinlogFile, off, ms, "", "", 0), 1, pbVarint(nil, 4, 12))
	end := pbEntry(pbHeader(BinlogFile, off+200, ms, "", "", 0), 3,
		pbString(nil, 2, strconv.Itoa(10000+c.Seq)))

	var body []byte
	body = pbVarint(body, 1, uint64(c.Seq+1)) // batch_id, always on the raw path
	for _, e := range [][]byte{begin, rowEntry, end} {
		body = pbBytes(body, 2, e)
	}
	var p []byte
	p = pbVarint(p, 3, 7) // MESSAGES
	return pbBytes(p, 5, body)
}
