package mongo

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rowsync/rowsync/cdc"
)

// converter turns cdc values into BSON values. It is immutable.
type converter struct {
	loc     *time.Location // DATETIME wall clock zone
	decimal string         // DecimalDecimal128 or DecimalString
}

// convert maps one column value to its BSON value, from the column's MySQL
// kind where known, else from the value's Go type:
//
//	TINYINT..MEDIUMINT, INT (signed), YEAR   int32
//	BIGINT, INT UNSIGNED, BIT                int64
//	BIGINT UNSIGNED beyond int64             Decimal128 (or text)
//	DECIMAL                                  Decimal128 (or text)
//	FLOAT, DOUBLE                            double
//	DATE, DATETIME, TIMESTAMP                date (ms; zero dates null)
//	TIME                                     string "HH:MM:SS[.f]"
//	JSON                                     document/array/scalar
//	BLOB, BINARY                             binary
//	CHAR..TEXT, ENUM                         string
//	SET                                      array of strings
//	NULL                                     null
func (c *converter) convert(col *cdc.Column, v cdc.Value) (any, error) {
	if v == nil {
		return nil, nil
	}
	if col == nil || col.Kind == cdc.KindUnknown {
		return c.fromGo(v), nil
	}
	if s, ok := v.(string); ok && col.Kind != cdc.KindString && col.Kind != cdc.KindEnum {
		// Text where a typed value belongs: parse it the one shared way.
		tv, err := cdc.ParseText(col, s)
		if err != nil {
			return nil, err
		}
		v = tv
	}
	switch col.Kind {
	case cdc.KindInt:
		if n, ok := v.(int64); ok {
			if int32Column(col) && n >= math.MinInt32 && n <= math.MaxInt32 {
				return int32(n), nil
			}
			return n, nil
		}
	case cdc.KindYear:
		if n, ok := v.(int64); ok && n >= math.MinInt32 && n <= math.MaxInt32 {
			return int32(n), nil
		}
	case cdc.KindDate, cdc.KindDateTime, cdc.KindTimestamp:
		switch x := v.(type) {
		case time.Time:
			if col.Kind == cdc.KindDateTime && c.loc != time.UTC {
				x = time.Date(x.Year(), x.Month(), x.Day(), x.Hour(), x.Minute(), x.Second(), x.Nanosecond(), c.loc)
			}
			return bson.NewDateTimeFromTime(x), nil
		case string:
			// Zero or partial dates ("0000-00-00", "2024-02-00") name no
			// instant; they are stored as null.
			return nil, nil
		}
	case cdc.KindTime:
		if d, ok := v.(time.Duration); ok {
			s, _ := cdc.FormatText(col, d)
			return s, nil
		}
	case cdc.KindJSON:
		switch x := v.(type) {
		case cdc.JSON:
			return c.json(string(x)), nil
		case []byte:
			return c.json(string(x)), nil
		}
	case cdc.KindString, cdc.KindEnum:
		if b, ok := v.([]byte); ok {
			if utf8.Valid(b) {
				return string(b), nil
			}
			return bson.Binary{Data: b}, nil
		}
	}
	return c.fromGo(v), nil
}

// int32Column reports whether every value of an integer column fits int32.
func int32Column(col *cdc.Column) bool {
	switch col.IntBytes {
	case 1, 2, 3:
		return true
	case 4:
		return !col.Unsigned
	}
	return false
}

// fromGo maps a value by its Go type, for columns of unknown kind.
func (c *converter) fromGo(v cdc.Value) any {
	switch x := v.(type) {
	case nil:
		return nil
	case int64, int32, float64, bool, string:
		return x
	case int:
		return int64(x)
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x)
		}
		return c.dec(strconv.FormatUint(x, 10))
	case float32:
		return float64(x)
	case cdc.Decimal:
		return c.dec(string(x))
	case []byte:
		return bson.Binary{Data: x}
	case time.Time:
		return bson.NewDateTimeFromTime(x)
	case time.Duration:
		return cdc.FormatDuration(x, -1)
	case cdc.JSON:
		return c.json(string(x))
	case cdc.Set:
		a := make(bson.A, len(x))
		for i, s := range x {
			a[i] = s
		}
		return a
	}
	// A type no source should produce: keep its text rather than fail.
	s, _ := cdc.FormatText(nil, v)
	return s
}

// dec stores an exact decimal text as Decimal128, or as text when the mode
// says so or Decimal128 cannot hold it exactly (more than 34 digits).
func (c *converter) dec(s string) any {
	if c.decimal == DecimalString {
		return s
	}
	d, err := bson.ParseDecimal128(s)
	if err != nil {
		return s
	}
	return d
}

// json parses JSON text into BSON, keeping object key order; text that is
// not JSON is kept as a string.
func (c *converter) json(s string) any {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	v, err := c.jsonValue(dec, 0)
	if err != nil {
		return s
	}
	if _, err := dec.Token(); err != io.EOF {
		return s // trailing data
	}
	return v
}

// maxJSONDepth bounds nesting (MongoDB allows 100 levels of documents).
const maxJSONDepth = 100

var errJSONDepth = errors.New("json nested too deep")

func (c *converter) jsonValue(dec *json.Decoder, depth int) (any, error) {
	if depth > maxJSONDepth {
		return nil, errJSONDepth
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			doc := bson.D{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				key, ok := kt.(string)
				if !ok {
					return nil, fmt.Errorf("json key %v", kt)
				}
				val, err := c.jsonValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				// A duplicate key: the last value wins, as in MySQL.
				if i := slices.IndexFunc(doc, func(e bson.E) bool { return e.Key == key }); i >= 0 {
					doc[i].Value = val
				} else {
					doc = append(doc, bson.E{Key: key, Value: val})
				}
			}
			_, err := dec.Token() // '}'
			return doc, err
		case '[':
			arr := bson.A{}
			for dec.More() {
				val, err := c.jsonValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				arr = append(arr, val)
			}
			_, err := dec.Token() // ']'
			return arr, err
		}
		return nil, fmt.Errorf("json delimiter %v", t)
	case json.Number:
		return c.jsonNumber(string(t)), nil
	}
	return tok, nil // string, bool, nil
}

// jsonNumber stores integers as int32 or int64 when they fit (as
// mongoimport does), larger integers as Decimal128, and the rest as double.
func (c *converter) jsonNumber(s string) any {
	if !strings.ContainsAny(s, ".eE") {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			if n >= math.MinInt32 && n <= math.MaxInt32 {
				return int32(n)
			}
			return n
		}
		return c.dec(s)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return c.dec(s)
	}
	return f
}
