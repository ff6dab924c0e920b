// Package canal holds what canal's flat JSON and protobuf formats share:
// the text canal prints for a column value (LogEventConvert.parseOneRow),
// the java.sql.Types codes that come with it, and small caches.
package canal

import (
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/rowsync/rowsync/cdc"
)

// NoSQLType marks a column whose java.sql.Types code the message omits.
const NoSQLType = math.MinInt32

// java.sql.Types codes canal writes (spec table 1.4).
const (
	TypeBit           = -7
	TypeTinyInt       = -6
	TypeBigInt        = -5
	TypeLongVarBinary = -4
	TypeVarBinary     = -3
	TypeBinary        = -2
	TypeChar          = 1
	TypeNumeric       = 2
	TypeDecimal       = 3
	TypeInteger       = 4
	TypeSmallInt      = 5
	TypeFloat         = 6
	TypeReal          = 7
	TypeDouble        = 8
	TypeVarChar       = 12
	TypeBoolean       = 16
	TypeDate          = 91
	TypeTime          = 92
	TypeTimestamp     = 93
	TypeBlob          = 2004
	TypeClob          = 2005
)

// BinarySQLType reports whether t says the value is bytes rendered as
// ISO-8859-1 text.
func BinarySQLType(t int32) bool {
	switch t {
	case TypeBlob, TypeBinary, TypeVarBinary, TypeLongVarBinary:
		return true
	}
	return false
}

// ColumnFromSQLType builds a Column from a java.sql.Types code alone, for
// producers that omit the MySQL type. TIMESTAMP (93) cannot be told from
// DATETIME there and is read as DATETIME (not shifted).
func ColumnFromSQLType(name string, t int32) cdc.Column {
	c := cdc.Column{Name: name, Precision: -1}
	switch t {
	case TypeTinyInt, TypeSmallInt, TypeInteger, TypeBigInt, TypeBoolean:
		c.Kind, c.IntBytes = cdc.KindInt, 8
	case TypeBit:
		c.Kind = cdc.KindBit
	case TypeDecimal, TypeNumeric:
		c.Kind = cdc.KindDecimal
	case TypeReal:
		c.Kind = cdc.KindFloat
	case TypeFloat, TypeDouble:
		c.Kind = cdc.KindDouble
	case TypeDate:
		c.Kind = cdc.KindDate
	case TypeTime:
		c.Kind = cdc.KindTime
	case TypeTimestamp:
		c.Kind = cdc.KindDateTime
	case TypeBlob, TypeBinary, TypeVarBinary, TypeLongVarBinary:
		c.Kind = cdc.KindBytes
	case TypeChar, TypeVarChar, TypeClob:
		c.Kind = cdc.KindString
	}
	return c
}

// Retains reports whether Value may return (part of) its text argument;
// when false, a caller may pass a string that aliases a reused buffer.
func Retains(k cdc.Kind) bool {
	switch k {
	case cdc.KindInt, cdc.KindFloat, cdc.KindDouble, cdc.KindYear, cdc.KindBit, cdc.KindTime:
		return false
	}
	return true
}

// Value converts canal's text s of one non-NULL value of col to its typed
// cdc.Value. sqlType is the message's java.sql.Types code or NoSQLType; loc
// is the zone canal printed TIMESTAMP text in. Beyond cdc.ParseText it
// undoes canal's renderings:
//
//   - BLOB/BINARY/VARBINARY/GEOMETRY text is ISO-8859-1: each code point is
//     one byte. Text with a code point above U+00FF cannot be that, and is
//     kept as its UTF-8 bytes (some canal-compatible producers send UTF-8).
//   - ENUM arrives as its 1-based index and SET as a bitmask; both map to
//     labels when the MySQL type lists them. Index 0 is MySQL's "" (invalid
//     value). Non-numeric text is taken as labels already.
//   - BIGINT UNSIGNED above 2^63-1 shows up with sqlType DECIMAL even if the
//     type text lost "unsigned".
//   - TIMESTAMP text is a wall clock in loc.
func Value(col *cdc.Column, sqlType int32, s string, loc *time.Location) (cdc.Value, error) {
	return ValueIn(nil, col, sqlType, s, loc)
}

// ValueIn is Value with the result boxed in a (nil: on its own; see
// cdc.Arena).
func ValueIn(a *cdc.Arena, col *cdc.Column, sqlType int32, s string, loc *time.Location) (cdc.Value, error) {
	switch col.Kind {
	case cdc.KindBytes:
		return Latin1Bytes(s), nil
	case cdc.KindUnknown:
		if BinarySQLType(sqlType) {
			return Latin1Bytes(s), nil
		}
		return a.String(s), nil
	case cdc.KindEnum:
		if len(col.Elems) == 0 || !digits(s) {
			return a.String(s), nil
		}
		i, err := strconv.ParseUint(s, 10, 16)
		if err != nil || i > uint64(len(col.Elems)) {
			return nil, fmt.Errorf("column %s: enum index %s out of range (%d labels)", col.Name, s, len(col.Elems))
		}
		if i == 0 {
			return "", nil
		}
		return a.String(col.Elems[i-1]), nil
	case cdc.KindSet:
		if len(col.Elems) == 0 || !digits(s) {
			return cdc.ParseTextIn(a, col, s)
		}
		mask, err := strconv.ParseUint(s, 10, 64)
		if err != nil || (len(col.Elems) < 64 && mask>>uint(len(col.Elems)) != 0) {
			return nil, fmt.Errorf("column %s: set bitmask %s has bits beyond its %d labels", col.Name, s, len(col.Elems))
		}
		set := cdc.Set{}
		for i := 0; i < len(col.Elems) && i < 64; i++ {
			if mask&(1<<uint(i)) != 0 {
				set = append(set, col.Elems[i])
			}
		}
		return set, nil
	case cdc.KindInt:
		v, err := cdc.ParseTextIn(a, col, s)
		if err != nil && !col.Unsigned && (sqlType == TypeDecimal || sqlType == TypeNumeric) {
			u := *col
			u.Unsigned = true
			if v2, err2 := cdc.ParseTextIn(a, &u, s); err2 == nil {
				return v2, nil
			}
		}
		return v, err
	case cdc.KindTimestamp:
		v, err := cdc.ParseTextIn(a, col, s)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", col.Name, err)
		}
		if t, ok := v.(time.Time); ok && loc != nil && loc != time.UTC {
			v = a.Time(time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), loc).UTC())
		}
		return v, nil
	case cdc.KindDate, cdc.KindDateTime:
		v, err := cdc.ParseTextIn(a, col, s)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", col.Name, err)
		}
		return v, nil
	}
	return cdc.ParseTextIn(a, col, s)
}

// Latin1Bytes returns the bytes behind ISO-8859-1 text: one byte per code
// point. Text with a code point above U+00FF (or invalid UTF-8) is not
// ISO-8859-1 and is returned as its own bytes.
func Latin1Bytes(s string) []byte {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return []byte(s)
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r > 0xFF || (r == utf8.RuneError && n <= 1) {
			return []byte(s)
		}
		out = append(out, byte(r))
		i += n
	}
	return out
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// CommitTime turns canal's execute time into a UTC time. canal writes ms;
// canal-compatible producers (Tencent CKafka) write seconds: anything below
// 1e11 (year 5138 in seconds, 1973 in ms) is read as seconds.
func CommitTime(es int64) time.Time {
	switch {
	case es <= 0:
		return time.Time{}
	case es < 1e11:
		return time.Unix(es, 0).UTC()
	}
	return time.UnixMilli(es).UTC()
}

// maxCache bounds the caches below; past it they start over, so a stream of
// ever-new names cannot grow memory without limit.
const maxCache = 4096

// Interner returns one shared string per distinct byte sequence, so the
// db, table and column names of a hot stream are not allocated per message.
// It is safe for concurrent use.
type Interner struct {
	mu sync.RWMutex
	m  map[string]string
}

// Get returns the string for b.
func (in *Interner) Get(b []byte) string {
	in.mu.RLock()
	s, ok := in.m[string(b)]
	in.mu.RUnlock()
	if ok {
		return s
	}
	s = string(b)
	in.mu.Lock()
	if in.m == nil || len(in.m) >= maxCache {
		in.m = make(map[string]string)
	}
	in.m[s] = s
	in.mu.Unlock()
	return s
}

// Cache maps byte keys to values built once; safe for concurrent use.
type Cache[V any] struct {
	mu sync.RWMutex
	m  map[string]V
}

// Get returns the value for key, building it with build on a miss. A build
// error is returned and nothing is stored.
func (c *Cache[V]) Get(key []byte, build func() (V, error)) (V, error) {
	c.mu.RLock()
	v, ok := c.m[string(key)]
	c.mu.RUnlock()
	if ok {
		return v, nil
	}
	v, err := build()
	if err != nil {
		return v, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCache {
		c.m = make(map[string]V)
	}
	c.m[string(key)] = v
	c.mu.Unlock()
	return v, nil
}
