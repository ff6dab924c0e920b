package binlog

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

// errShort is a rows event whose bytes end before its declared content.
var errShort = errors.New("rows event shorter than its content")

// partialDiffCounts walks the raw bytes of a PARTIAL_UPDATE_ROWS_EVENT and
// returns, per row pair, how many diff operations each partially updated
// JSON column holds. go-mysql decodes only the first operation of a
// column's diff vector (JSON_SET(c, '$.a', 1, '$.b', 2) writes two), so a
// column with more than one cannot be applied from the event.
func partialDiffCounts(raw []byte, e *replication.RowsEvent) ([]map[int]int, error) {
	tm := e.Table
	n := int(e.ColumnCount)
	if tm == nil || len(tm.ColumnType) < n || len(tm.ColumnMeta) < n {
		return nil, errors.New("rows event does not match its table map")
	}
	r := reader{b: raw, i: replication.EventHeaderSize}
	// post-header: table id (6 bytes since MySQL 5.6), flags, extra data
	if err := r.skip(6 + 2); err != nil {
		return nil, err
	}
	extra, err := r.uint16()
	if err != nil {
		return nil, err
	}
	if extra < 2 {
		return nil, errors.New("rows event extra data length below 2")
	}
	if err := r.skip(int(extra) - 2); err != nil {
		return nil, err
	}
	cols, err := r.lenenc()
	if err != nil {
		return nil, err
	}
	if cols != e.ColumnCount {
		return nil, fmt.Errorf("rows event header gives %d columns, go-mysql %d", cols, e.ColumnCount)
	}
	bm := (n + 7) / 8
	bitmap1, err := r.take(bm)
	if err != nil {
		return nil, err
	}
	bitmap2, err := r.take(bm)
	if err != nil {
		return nil, err
	}
	jsonCols := 0
	for i := range n {
		if tm.ColumnType[i] == mysql.MYSQL_TYPE_JSON {
			jsonCols++
		}
	}
	out := make([]map[int]int, 0, len(e.Rows)/2)
	for range len(e.Rows) / 2 {
		// before image
		if err := r.imageDiffs(tm, n, bitmap1, nil, nil); err != nil {
			return nil, fmt.Errorf("before image: %w", err)
		}
		// after image: value options, then the partial bitmap (one bit
		// per JSON column of the table) when partial JSON is on
		opts, err := r.lenenc()
		if err != nil {
			return nil, err
		}
		var partial []byte
		if opts&1 != 0 {
			if partial, err = r.take((jsonCols + 7) / 8); err != nil {
				return nil, err
			}
		}
		ops := map[int]int{}
		if err := r.imageDiffs(tm, n, bitmap2, partial, ops); err != nil {
			return nil, fmt.Errorf("after image: %w", err)
		}
		out = append(out, ops)
	}
	return out, nil
}

type reader struct {
	b []byte
	i int
}

func (r *reader) skip(n int) error {
	if n < 0 || r.i+n > len(r.b) {
		return errShort
	}
	r.i += n
	return nil
}

func (r *reader) take(n int) ([]byte, error) {
	if n < 0 || r.i+n > len(r.b) {
		return nil, errShort
	}
	b := r.b[r.i : r.i+n]
	r.i += n
	return b, nil
}

func (r *reader) uint16() (uint16, error) {
	b, err := r.take(2)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint16(b), nil
}

// uintN reads an n-byte little-endian length.
func (r *reader) uintN(n int) (int, error) {
	b, err := r.take(n)
	if err != nil {
		return 0, err
	}
	v := 0
	for k := n - 1; k >= 0; k-- {
		v = v<<8 | int(b[k])
	}
	if v < 0 {
		return 0, errShort
	}
	return v, nil
}

func (r *reader) lenenc() (uint64, error) {
	if r.i >= len(r.b) {
		return 0, errShort
	}
	v, _, n := mysql.LengthEncodedInt(r.b[r.i:])
	if n == 0 || r.i+n > len(r.b) {
		return 0, errShort
	}
	r.i += n
	return v, nil
}

func bitSet(b []byte, i int) bool { return i/8 < len(b) && b[i/8]&(1<<(i%8)) != 0 }

// imageDiffs skips one row image, counting the diff operations of every
// partially updated JSON column into ops.
func (r *reader) imageDiffs(tm *replication.TableMapEvent, n int, present, partial []byte, ops map[int]int) error {
	count := 0
	for i := range n {
		if bitSet(present, i) {
			count++
		}
	}
	nulls, err := r.take((count + 7) / 8)
	if err != nil {
		return err
	}
	k, j := 0, 0 // index among present columns, among JSON columns
	for i := range n {
		isPartial := false
		if tm.ColumnType[i] == mysql.MYSQL_TYPE_JSON {
			isPartial = bitSet(partial, j)
			j++
		}
		if !bitSet(present, i) {
			continue
		}
		null := nulls[k/8]&(1<<(k%8)) != 0
		k++
		if null {
			continue
		}
		if isPartial {
			size, err := r.uintN(int(tm.ColumnMeta[i]))
			if err != nil {
				return err
			}
			vec, err := r.take(size)
			if err != nil {
				return err
			}
			c, err := countDiffs(vec)
			if err != nil {
				return fmt.Errorf("column %d: %w", i+1, err)
			}
			ops[i] = c
			continue
		}
		size, err := r.valueLen(tm.ColumnType[i], tm.ColumnMeta[i])
		if err != nil {
			return fmt.Errorf("column %d: %w", i+1, err)
		}
		if err := r.skip(size); err != nil {
			return err
		}
	}
	return nil
}

// countDiffs counts the operations of a binary JSON diff vector: each is
// an operation byte, a length-prefixed path and, unless it removes, a
// length-prefixed value.
func countDiffs(vec []byte) (int, error) {
	r := reader{b: vec}
	c := 0
	for r.i < len(r.b) {
		op := r.b[r.i]
		r.i++
		if op > byte(replication.JsonDiffOperationRemove) {
			return 0, fmt.Errorf("json diff operation %d unknown", op)
		}
		pl, err := r.lenenc()
		if err != nil {
			return 0, err
		}
		if err := r.skip(int(pl)); err != nil {
			return 0, err
		}
		if op != byte(replication.JsonDiffOperationRemove) {
			vl, err := r.lenenc()
			if err != nil {
				return 0, err
			}
			if err := r.skip(int(vl)); err != nil {
				return 0, err
			}
		}
		c++
	}
	return c, nil
}

var dig2bytes = [10]int{0, 1, 1, 2, 2, 3, 3, 4, 4, 4}

// valueLen is the size of the next value of a column of binlog type tp,
// read at r without moving past it except for its length prefix.
func (r *reader) valueLen(tp byte, meta uint16) (int, error) {
	length := 0
	if tp == mysql.MYSQL_TYPE_STRING {
		tp, length = realType(tp, meta), stringLen(meta)
	}
	switch tp {
	case mysql.MYSQL_TYPE_NULL:
		return 0, nil
	case mysql.MYSQL_TYPE_TINY, mysql.MYSQL_TYPE_YEAR:
		return 1, nil
	case mysql.MYSQL_TYPE_SHORT:
		return 2, nil
	case mysql.MYSQL_TYPE_INT24, mysql.MYSQL_TYPE_DATE, mysql.MYSQL_TYPE_TIME, mysql.MYSQL_TYPE_NEWDATE:
		return 3, nil
	case mysql.MYSQL_TYPE_LONG, mysql.MYSQL_TYPE_FLOAT, mysql.MYSQL_TYPE_TIMESTAMP:
		return 4, nil
	case mysql.MYSQL_TYPE_LONGLONG, mysql.MYSQL_TYPE_DOUBLE, mysql.MYSQL_TYPE_DATETIME:
		return 8, nil
	case mysql.MYSQL_TYPE_TIMESTAMP2:
		return 4 + (int(meta)+1)/2, nil
	case mysql.MYSQL_TYPE_DATETIME2:
		return 5 + (int(meta)+1)/2, nil
	case mysql.MYSQL_TYPE_TIME2:
		return 3 + (int(meta)+1)/2, nil
	case mysql.MYSQL_TYPE_NEWDECIMAL:
		prec, scale := int(meta>>8), int(meta&0xff)
		if scale > prec || prec > 65 {
			return 0, fmt.Errorf("decimal(%d,%d) metadata", prec, scale)
		}
		intg := prec - scale
		return intg/9*4 + dig2bytes[intg%9] + scale/9*4 + dig2bytes[scale%9], nil
	case mysql.MYSQL_TYPE_BIT:
		nbits := int(meta>>8)*8 + int(meta&0xff)
		return (nbits + 7) / 8, nil
	case mysql.MYSQL_TYPE_ENUM, mysql.MYSQL_TYPE_SET:
		return int(meta & 0xff), nil
	case mysql.MYSQL_TYPE_VARCHAR, mysql.MYSQL_TYPE_VAR_STRING:
		if meta < 256 {
			return r.uintN(1)
		}
		return r.uintN(2)
	case mysql.MYSQL_TYPE_STRING:
		if length < 256 {
			return r.uintN(1)
		}
		return r.uintN(2)
	case mysql.MYSQL_TYPE_BLOB, mysql.MYSQL_TYPE_GEOMETRY, mysql.MYSQL_TYPE_JSON, mysql.MYSQL_TYPE_VECTOR:
		if meta < 1 || meta > 4 {
			return 0, fmt.Errorf("length prefix of %d bytes", meta)
		}
		return r.uintN(int(meta))
	}
	return 0, fmt.Errorf("binlog type %d unknown", tp)
}
