package binlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unsafe"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/rowsync/rowsync/cdc"
)

// The source decodes the row images of most rows events itself, straight
// into cdc.Rows with the table's plan: go-mysql's decoder builds a []any
// per image (every value boxed, a signedness map per image) that rows()
// then converted again, about a third of the binlog drain's CPU.
//
// decodeRowsHeader, the syncer's RowsEventDecodeFunc, has go-mysql decode
// only the event header and leaves the images raw when every column type
// is one ownType decodes; anything else (JSON, the pre-5.6 temporal types,
// partial JSON updates, v0 events) go-mysql decodes as before. The values
// are the ones the old path gave: each is decoded as go-mysql does and
// handed to the same convert helpers. Whenever the own decoder meets
// something it does not expect (a truncated image, a bad length, a value
// convert rejects) the whole event goes through go-mysql's decoder and the
// old path instead, so errors, rejects and their classification stay
// exactly as they were.

// rawImages is the undecoded row images of a rows event, put in the
// event's Rows as its only value by decodeRowsHeader (RowsEvent has no
// other place for them). One allocation holds it and that Rows.
type rawImages struct {
	data []byte // the event body (checksum cut) as go-mysql was given it
	pos  int    // where the row images start in data
	row  [1]any
	rows [1][]any
}

// rawOf returns the raw images decodeRowsHeader left in e, or nil when
// go-mysql decoded e.
func rawOf(e *replication.RowsEvent) *rawImages {
	if len(e.Rows) == 1 && len(e.Rows[0]) == 1 {
		r, _ := e.Rows[0][0].(*rawImages)
		return r
	}
	return nil
}

// decodeRowsHeader is the syncer's RowsEventDecodeFunc (see above). It
// runs in the syncer's goroutine and reads nothing but e and data.
func decodeRowsHeader(e *replication.RowsEvent, data []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			// go-mysql's header decoding does not check lengths
			err = fmt.Errorf("rows event header: %v", r)
		}
	}()
	pos, err := e.DecodeHeader(data)
	if err != nil {
		return err
	}
	if pos > len(data) || e.Type() == replication.EnumRowsEventTypeUnknown || e.Table == nil ||
		e.ColumnCount != e.Table.ColumnCount || !ownTypes(e.Table) {
		return e.DecodeData(pos, data)
	}
	r := &rawImages{data: data, pos: pos}
	r.row[0] = r
	r.rows[0] = r.row[:]
	e.Rows = r.rows[:]
	return nil
}

// decodeAll has go-mysql decode the images after all: the old path.
func (r *rawImages) decodeAll(e *replication.RowsEvent) (err error) {
	defer func() {
		if x := recover(); x != nil {
			err = fmt.Errorf("rows event: %v", x)
		}
	}()
	e.Rows, e.SkippedColumns = nil, nil
	return e.DecodeData(r.pos, r.data)
}

// images returns the row images of an event of type t, false when the own
// decoder does not take that event type.
func (r *rawImages) images(t replication.EventType) ([]byte, bool) {
	switch t {
	case replication.WRITE_ROWS_EVENTv1, replication.WRITE_ROWS_EVENTv2,
		replication.UPDATE_ROWS_EVENTv1, replication.UPDATE_ROWS_EVENTv2,
		replication.DELETE_ROWS_EVENTv1, replication.DELETE_ROWS_EVENTv2:
		return r.data[r.pos:], true
	case replication.MARIADB_WRITE_ROWS_COMPRESSED_EVENT_V1, replication.MARIADB_UPDATE_ROWS_COMPRESSED_EVENT_V1,
		replication.MARIADB_DELETE_ROWS_COMPRESSED_EVENT_V1:
		b, err := decompressMariaDB(r.data[r.pos:])
		return b, err == nil
	}
	return nil, false
}

// maxRowsEvent bounds the size a compressed rows event may claim
// (max_allowed_packet's ceiling): a larger claim is corrupt.
const maxRowsEvent = 1 << 30

// decompressMariaDB is mysql.DecompressMariadbData with the header checked
// first: a corrupt size would make it allocate without bound or panic.
func decompressMariaDB(data []byte) (b []byte, err error) {
	if len(data) < 1 {
		return nil, errTruncated
	}
	n := int(data[0] & 0x07)
	if n < 1 || n > 4 || len(data) < 1+n || mysql.BFixedLengthInt(data[1:1+n]) > maxRowsEvent {
		return nil, errors.New("bad compressed rows header")
	}
	defer func() {
		if x := recover(); x != nil {
			err = fmt.Errorf("compressed rows: %v", x)
		}
	}()
	return mysql.DecompressMariadbData(data)
}

// ownTypes reports whether decodeValue takes every column of tm.
func ownTypes(tm *replication.TableMapEvent) bool {
	if len(tm.ColumnType) != int(tm.ColumnCount) || len(tm.ColumnMeta) != len(tm.ColumnType) {
		return false
	}
	for i, tp := range tm.ColumnType {
		if !ownType(realType(tp, tm.ColumnMeta[i])) {
			return false
		}
	}
	return true
}

// ownType lists the binlog types decodeValue decodes. JSON (go-mysql's
// binary JSON decoder is not exported) and the pre-5.6.4 TIMESTAMP,
// DATETIME and TIME encodings are left to go-mysql.
func ownType(tp byte) bool {
	switch tp {
	case mysql.MYSQL_TYPE_TINY, mysql.MYSQL_TYPE_SHORT, mysql.MYSQL_TYPE_INT24, mysql.MYSQL_TYPE_LONG,
		mysql.MYSQL_TYPE_LONGLONG, mysql.MYSQL_TYPE_FLOAT, mysql.MYSQL_TYPE_DOUBLE, mysql.MYSQL_TYPE_NEWDECIMAL,
		mysql.MYSQL_TYPE_BIT, mysql.MYSQL_TYPE_TIMESTAMP2, mysql.MYSQL_TYPE_DATETIME2, mysql.MYSQL_TYPE_TIME2,
		mysql.MYSQL_TYPE_DATE, mysql.MYSQL_TYPE_YEAR, mysql.MYSQL_TYPE_ENUM, mysql.MYSQL_TYPE_SET,
		mysql.MYSQL_TYPE_VARCHAR, mysql.MYSQL_TYPE_VAR_STRING, mysql.MYSQL_TYPE_STRING,
		mysql.MYSQL_TYPE_BLOB, mysql.MYSQL_TYPE_GEOMETRY, mysql.MYSQL_TYPE_VECTOR:
		return true
	}
	return false
}

var errTruncated = errors.New("row image truncated")

// decodeImage decodes one row image from data with the column bitmap of
// the event, as image does for go-mysql's values: columns the bitmap
// leaves out take before's value or are reported missing. n is the image's
// length. The row comes from rows, of the plan's layout; a column the
// image does not carry stays absent. Any error means: decode this event
// with go-mysql instead.
func (p *plan) decodeImage(rows *cdc.BatchRows, data, bitmap []byte, before *cdc.Row) (r *cdc.Row, missing []string, n int, err error) {
	ncol := len(p.cols)
	if len(bitmap) < (ncol+7)/8 {
		return nil, nil, 0, errTruncated
	}
	present := 0
	for i := range ncol {
		if bitmap[i>>3]&(1<<(i&7)) != 0 {
			present++
		}
	}
	pos := (present + 7) / 8
	if len(data) < pos {
		return nil, nil, 0, errTruncated
	}
	nulls := data[:pos]
	r = p.row(rows)
	k := 0
	for i := range ncol {
		if bitmap[i>>3]&(1<<(i&7)) == 0 {
			if bv, ok := p.beforeValue(before, i); ok {
				p.set(r, i, bv)
			} else {
				missing = append(missing, p.names[i])
			}
			continue
		}
		null := nulls[k>>3]&(1<<(k&7)) != 0
		k++
		if null {
			p.set(r, i, nil)
			continue
		}
		v, n, err := p.decodeValue(i, data[pos:])
		if err != nil {
			return nil, nil, 0, err
		}
		pos += n
		p.set(r, i, v)
	}
	return r, missing, pos, nil
}

// row returns an empty row for an image of p's table, from rows: of p's
// layout, or, without one, a row filled by name.
func (p *plan) row(rows *cdc.BatchRows) *cdc.Row {
	if p.layout != nil {
		return rows.Of(p.layout)
	}
	return rows.Get(len(p.names))
}

// set sets column i of r, a row from p.row.
func (p *plan) set(r *cdc.Row, i int, v cdc.Value) {
	if p.layout != nil {
		r.SetAt(i, v)
		return
	}
	r.Set(p.names[i], v)
}

// beforeValue returns the value of column i in before (nil, or an image
// decoded earlier), false when before lacks it: by index when before has
// p's layout, as it has unless it came through the JSON memory.
func (p *plan) beforeValue(before *cdc.Row, i int) (cdc.Value, bool) {
	if before == nil {
		return nil, false
	}
	if p.layout != nil && before.Layout() == p.layout {
		_, v, ok := before.At(i)
		return v, ok
	}
	return before.Lookup(p.names[i])
}

// decodeValue decodes the non-NULL value of column i at the start of data
// as go-mysql's decodeValue does (ParseTime on, UseDecimal off, the table
// map's signedness) and converts it as convert does; n is its length.
func (p *plan) decodeValue(i int, data []byte) (v cdc.Value, n int, err error) {
	col := &p.cols[i]
	meta := p.metas[i]
	tp := realType(p.types[i], meta)
	need := func(n int) bool { return len(data) >= n }
	switch tp {
	case mysql.MYSQL_TYPE_TINY:
		if !need(1) {
			return nil, 0, errTruncated
		}
		if p.unsigned[i] {
			v, err = convertUint(&p.vals, col, uint64(data[0]))
		} else {
			v, err = convertInt(&p.vals, col, int64(int8(data[0])))
		}
		return v, 1, err
	case mysql.MYSQL_TYPE_SHORT:
		if !need(2) {
			return nil, 0, errTruncated
		}
		u := binary.LittleEndian.Uint16(data)
		if p.unsigned[i] {
			v, err = convertUint(&p.vals, col, uint64(u))
		} else {
			v, err = convertInt(&p.vals, col, int64(int16(u)))
		}
		return v, 2, err
	case mysql.MYSQL_TYPE_INT24:
		if !need(3) {
			return nil, 0, errTruncated
		}
		u := uint32(data[0]) | uint32(data[1])<<8 | uint32(data[2])<<16
		if p.unsigned[i] {
			v, err = convertUint(&p.vals, col, uint64(u))
		} else {
			if u&0x800000 != 0 {
				u |= 0xff000000
			}
			v, err = convertInt(&p.vals, col, int64(int32(u)))
		}
		return v, 3, err
	case mysql.MYSQL_TYPE_LONG:
		if !need(4) {
			return nil, 0, errTruncated
		}
		u := binary.LittleEndian.Uint32(data)
		if p.unsigned[i] {
			v, err = convertUint(&p.vals, col, uint64(u))
		} else {
			v, err = convertInt(&p.vals, col, int64(int32(u)))
		}
		return v, 4, err
	case mysql.MYSQL_TYPE_LONGLONG:
		if !need(8) {
			return nil, 0, errTruncated
		}
		u := binary.LittleEndian.Uint64(data)
		if p.unsigned[i] {
			v, err = convertUint(&p.vals, col, u)
		} else {
			v, err = convertInt(&p.vals, col, int64(u))
		}
		return v, 8, err
	case mysql.MYSQL_TYPE_FLOAT:
		if !need(4) {
			return nil, 0, errTruncated
		}
		return p.vals.Float64(float64(math.Float32frombits(binary.LittleEndian.Uint32(data)))), 4, nil
	case mysql.MYSQL_TYPE_DOUBLE:
		if !need(8) {
			return nil, 0, errTruncated
		}
		return p.vals.Float64(math.Float64frombits(binary.LittleEndian.Uint64(data))), 8, nil
	case mysql.MYSQL_TYPE_NEWDECIMAL:
		if cap(p.text)-len(p.text) < maxDecimalText {
			p.text = make([]byte, 0, textBlock) // the full block stays as it is
		}
		at := len(p.text)
		b, n, err := decodeDecimal(p.text, data, int(meta>>8), int(meta&0xff))
		if err != nil {
			return nil, 0, err
		}
		p.text = b
		s := unsafe.String(&b[at], len(b)-at)
		v, err = convertString(&p.vals, col, s, p.binLen[i])
		return v, n, err
	case mysql.MYSQL_TYPE_BIT:
		nbits := int(meta>>8)*8 + int(meta&0xff)
		n = (nbits + 7) / 8
		if n < 1 || n > 8 || nbits <= 1 && n != 1 || !need(n) {
			return nil, 0, errTruncated
		}
		var u uint64
		for _, b := range data[:n] {
			u = u<<8 | uint64(b)
		}
		v, err = convertInt(&p.vals, col, int64(u))
		return v, n, err
	case mysql.MYSQL_TYPE_TIMESTAMP2:
		return p.timestamp2(i, data)
	case mysql.MYSQL_TYPE_DATETIME2:
		return p.datetime2(i, data)
	case mysql.MYSQL_TYPE_TIME2:
		s, n, err := decodeTime2(data, meta)
		if err != nil {
			return nil, 0, err
		}
		v, err = convertString(&p.vals, col, s, p.binLen[i])
		return v, n, err
	case mysql.MYSQL_TYPE_DATE:
		if !need(3) {
			return nil, 0, errTruncated
		}
		u := int(data[0]) | int(data[1])<<8 | int(data[2])<<16
		y, m, d := u/(16*32), u/32%16, u%32
		if u != 0 && col.Kind == cdc.KindDate && col.Invalid == "" && y <= 9999 {
			// what cdc.ParseText makes of the text below, without it
			if t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC); int(t.Month()) == m && t.Day() == d && t.Year() == y {
				return p.vals.Time(t), 3, nil
			}
		}
		s := "0000-00-00"
		if u != 0 {
			s = fmt.Sprintf("%04d-%02d-%02d", y, m, d)
		}
		v, err = convertString(&p.vals, col, s, p.binLen[i])
		return v, 3, err
	case mysql.MYSQL_TYPE_YEAR:
		if !need(1) {
			return nil, 0, errTruncated
		}
		y := int64(data[0])
		if y != 0 {
			y += 1900
		}
		v, err = convertInt(&p.vals, col, y)
		return v, 1, err
	case mysql.MYSQL_TYPE_ENUM:
		switch meta & 0xff {
		case 1:
			if !need(1) {
				return nil, 0, errTruncated
			}
			v, err = convertInt(&p.vals, col, int64(data[0]))
			return v, 1, err
		case 2:
			if !need(2) {
				return nil, 0, errTruncated
			}
			v, err = convertInt(&p.vals, col, int64(binary.LittleEndian.Uint16(data)))
			return v, 2, err
		}
		return nil, 0, fmt.Errorf("enum pack length %d", meta&0xff)
	case mysql.MYSQL_TYPE_SET:
		n = int(meta & 0xff)
		if n < 1 || n > 8 || !need(n) {
			return nil, 0, errTruncated
		}
		var u uint64
		for k := n - 1; k >= 0; k-- {
			u = u<<8 | uint64(data[k])
		}
		v, err = convertInt(&p.vals, col, int64(u))
		return v, n, err
	case mysql.MYSQL_TYPE_VARCHAR, mysql.MYSQL_TYPE_VAR_STRING, mysql.MYSQL_TYPE_STRING:
		length := int(meta)
		if tp == mysql.MYSQL_TYPE_STRING {
			length = stringLen(meta)
		}
		var s []byte
		if length < 256 {
			if !need(1) || !need(1+int(data[0])) {
				return nil, 0, errTruncated
			}
			s, n = data[1:1+int(data[0])], 1+int(data[0])
		} else {
			if !need(2) {
				return nil, 0, errTruncated
			}
			l := int(binary.LittleEndian.Uint16(data))
			if !need(2 + l) {
				return nil, 0, errTruncated
			}
			s, n = data[2:2+l], 2+l
		}
		// an alias into the event's buffer, which is never reused, as
		// go-mysql's strings are (see convert)
		v, err = convertString(&p.vals, col, unsafe.String(unsafe.SliceData(s), len(s)), p.binLen[i])
		return v, n, err
	case mysql.MYSQL_TYPE_BLOB, mysql.MYSQL_TYPE_GEOMETRY, mysql.MYSQL_TYPE_VECTOR:
		if meta < 1 || meta > 4 || !need(int(meta)) {
			return nil, 0, errTruncated
		}
		var l uint64
		for k := int(meta) - 1; k >= 0; k-- {
			l = l<<8 | uint64(data[k])
		}
		if l > uint64(len(data)-int(meta)) {
			return nil, 0, errTruncated
		}
		n = int(meta) + int(l)
		if col.Kind == cdc.KindString && col.Charset == "" {
			// UTF-8 TEXT: convertBytes would copy; an alias as for VARCHAR
			b := data[meta:n]
			return p.vals.String(unsafe.String(unsafe.SliceData(b), len(b))), n, nil
		}
		v, err = convertBytes(col, data[meta:n], p.binLen[i])
		return v, n, err
	}
	return nil, 0, fmt.Errorf("binlog type %d", tp)
}

// timestamp2 decodes a TIMESTAMP(fsp) as go-mysql's decodeTimestamp2.
func (p *plan) timestamp2(i int, data []byte) (cdc.Value, int, error) {
	dec := p.metas[i]
	if dec > 6 {
		return nil, 0, fmt.Errorf("timestamp precision %d", dec)
	}
	n := int(4 + (dec+1)/2)
	if len(data) < n {
		return nil, 0, errTruncated
	}
	sec := int64(binary.BigEndian.Uint32(data))
	usec := fracPart(data[4:n], dec)
	if sec == 0 {
		v, err := convertString(&p.vals, &p.cols[i], formatZeroTime(int(usec), int(dec)), p.binLen[i])
		return v, n, err
	}
	v, err := convertTime(&p.vals, &p.cols[i], time.Unix(sec, usec*1000))
	return v, n, err
}

// fracPart is the microseconds of a temporal value's fraction bytes.
func fracPart(b []byte, dec uint16) int64 {
	switch dec {
	case 1, 2:
		return int64(b[0]) * 10000
	case 3, 4:
		return int64(binary.BigEndian.Uint16(b)) * 100
	case 5, 6:
		return int64(b[0])<<16 | int64(b[1])<<8 | int64(b[2])
	}
	return 0
}

const datetimeIntOfs int64 = 0x8000000000

// datetime2 decodes a DATETIME(fsp) as go-mysql's decodeDatetime2.
func (p *plan) datetime2(i int, data []byte) (cdc.Value, int, error) {
	dec := p.metas[i]
	if dec > 6 {
		return nil, 0, fmt.Errorf("datetime precision %d", dec)
	}
	n := int(5 + (dec+1)/2)
	if len(data) < n {
		return nil, 0, errTruncated
	}
	intPart := int64(data[0])<<32 | int64(data[1])<<24 | int64(data[2])<<16 | int64(data[3])<<8 | int64(data[4])
	intPart -= datetimeIntOfs
	frac := fracPart(data[5:n], dec)
	col := &p.cols[i]
	if intPart == 0 {
		v, err := convertString(&p.vals, col, formatZeroTime(int(frac), int(dec)), p.binLen[i])
		return v, n, err
	}
	tmp := intPart<<24 + frac
	if tmp < 0 {
		tmp = -tmp
	}
	ymdhms := tmp >> 24
	ymd := ymdhms >> 17
	ym := ymd >> 5
	hms := ymdhms % (1 << 17)
	day := int(ymd % (1 << 5))
	month := int(ym % 13)
	year := int(ym / 13)
	second := int(hms % (1 << 6))
	minute := int((hms >> 6) % (1 << 6))
	hour := int(hms >> 12)
	// go-mysql gives dates before 1970 and those with a zero part as text
	if intPart < 107420450816 || month == 0 || day == 0 {
		v, err := convertString(&p.vals, col, formatDatetime(year, month, day, hour, minute, second, int(frac), int(dec)), p.binLen[i])
		return v, n, err
	}
	v, err := convertTime(&p.vals, col, time.Date(year, time.Month(month), day, hour, minute, second, int(frac*1000), time.UTC))
	return v, n, err
}

func formatZeroTime(frac int, dec int) string {
	if dec == 0 {
		return "0000-00-00 00:00:00"
	}
	s := fmt.Sprintf("0000-00-00 00:00:00.%06d", frac)
	return s[0 : len(s)-(6-dec)]
}

func formatDatetime(year, month, day, hour, minute, second, frac, dec int) string {
	if dec == 0 {
		return fmt.Sprintf("%04d-%02d-%02d %02d:%02d:%02d", year, month, day, hour, minute, second)
	}
	s := fmt.Sprintf("%04d-%02d-%02d %02d:%02d:%02d.%06d", year, month, day, hour, minute, second, frac)
	return s[0 : len(s)-(6-dec)]
}

const (
	timefOfs    int64 = 0x800000000000
	timefIntOfs int64 = 0x800000
)

// decodeTime2 is go-mysql's decodeTime2: TIME(fsp) as MySQL's text.
func decodeTime2(data []byte, dec uint16) (string, int, error) {
	if dec > 6 {
		return "", 0, fmt.Errorf("time precision %d", dec)
	}
	n := int(3 + (dec+1)/2)
	if len(data) < n {
		return "", 0, errTruncated
	}
	be := func(b []byte) int64 {
		var v int64
		for _, c := range b {
			v = v<<8 | int64(c)
		}
		return v
	}
	var tmp, intPart, frac int64
	switch dec {
	case 1, 2:
		intPart = be(data[0:3]) - timefIntOfs
		frac = int64(data[3])
		if intPart < 0 && frac != 0 {
			intPart++
			frac -= 0x100
		}
		tmp = intPart<<24 + frac*10000
	case 3, 4:
		intPart = be(data[0:3]) - timefIntOfs
		frac = int64(binary.BigEndian.Uint16(data[3:5]))
		if intPart < 0 && frac != 0 {
			intPart++
			frac -= 0x10000
		}
		tmp = intPart<<24 + frac*100
	case 5, 6:
		return timeFormat(be(data[0:6])-timefOfs, dec), n, nil
	default:
		intPart = be(data[0:3]) - timefIntOfs
		tmp = intPart << 24
	}
	if intPart == 0 && frac == 0 {
		return "00:00:00", n, nil
	}
	return timeFormat(tmp, dec), n, nil
}

func timeFormat(tmp int64, dec uint16) string {
	sign := ""
	if tmp < 0 {
		tmp = -tmp
		sign = "-"
	}
	hms := tmp >> 24
	hour := (hms >> 12) % (1 << 10)
	minute := (hms >> 6) % (1 << 6)
	second := hms % (1 << 6)
	secPart := tmp % (1 << 24)
	if secPart != 0 {
		s := fmt.Sprintf("%s%02d:%02d:%02d.%06d", sign, hour, minute, second, secPart)
		return s[0 : len(s)-(6-int(dec))]
	}
	return fmt.Sprintf("%s%02d:%02d:%02d", sign, hour, minute, second)
}

// decimal digits per 4 bytes, and bytes per leftover digit count
const digitsPerInt = 9

var decimalBytes = [...]int{0, 1, 1, 2, 2, 3, 3, 4, 4, 4}

// decodeDecimal is go-mysql's decodeDecimal (UseDecimal off): it appends
// to dst the exact text of a DECIMAL(precision, scale) in binary form
// (into the plan's text block, not a string of its own per value).
func decodeDecimal(dst, data []byte, precision, scale int) ([]byte, int, error) {
	if precision < 1 || scale > precision || precision > 2*cdc.MaxDecimalPrecision {
		return dst, 0, fmt.Errorf("decimal(%d,%d)", precision, scale)
	}
	integral := precision - scale
	uInt, uFrac := integral/digitsPerInt, scale/digitsPerInt
	cInt, cFrac := integral-uInt*digitsPerInt, scale-uFrac*digitsPerInt
	size := uInt*4 + decimalBytes[cInt] + uFrac*4 + decimalBytes[cFrac]
	if len(data) < size || size == 0 {
		return dst, 0, errTruncated
	}
	b := dst
	var mask uint32
	neg := data[0]&0x80 == 0
	if neg {
		mask = math.MaxUint32
		b = append(b, '-')
	}
	// the sign bit flipped, without touching the event's bytes
	at := func(k int) byte {
		if k == 0 {
			return data[0] ^ 0x80
		}
		return data[k]
	}
	word := func(k, size int) uint32 {
		var v uint32
		for j := range size {
			v = v<<8 | uint32(at(k+j)^byte(mask))
		}
		return v
	}
	pos := 0
	lead := true
	if sz := decimalBytes[cInt]; sz > 0 {
		if v := word(0, sz); v != 0 {
			lead = false
			b = strconv.AppendUint(b, uint64(v), 10)
		}
		pos = sz
	}
	for range uInt {
		v := word(pos, 4)
		pos += 4
		if lead {
			if v != 0 {
				lead = false
				b = strconv.AppendUint(b, uint64(v), 10)
			}
		} else {
			b = appendPadded(b, v, digitsPerInt)
		}
	}
	if lead {
		b = append(b, '0')
	}
	if pos < size {
		b = append(b, '.')
		for range uFrac {
			b = appendPadded(b, word(pos, 4), digitsPerInt)
			pos += 4
		}
		if sz := decimalBytes[cFrac]; sz > 0 {
			b = appendPadded(b, word(pos, sz), cFrac)
			pos += sz
		}
	}
	return b, pos, nil
}

// appendPadded appends v with leading zeros to width digits (more when v
// is wider, as go-mysql prints it).
func appendPadded(b []byte, v uint32, width int) []byte {
	var d [10]byte
	s := strconv.AppendUint(d[:0], uint64(v), 10)
	for k := len(s); k < width; k++ {
		b = append(b, '0')
	}
	return append(b, s...)
}
