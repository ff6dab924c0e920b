package cdc

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Kind is the family of a MySQL column type; it decides the Go type of a
// Value and how sinks render it.
type Kind uint8

const (
	KindUnknown   Kind = iota // the source gave no type; values are strings
	KindInt                   // TINYINT..BIGINT (also BOOL)
	KindFloat                 // FLOAT
	KindDouble                // DOUBLE, REAL
	KindDecimal               // DECIMAL, NUMERIC
	KindString                // CHAR, VARCHAR, TEXT
	KindBytes                 // BINARY, VARBINARY, BLOB, spatial types
	KindDate                  // DATE
	KindDateTime              // DATETIME
	KindTimestamp             // TIMESTAMP
	KindTime                  // TIME
	KindYear                  // YEAR
	KindJSON                  // JSON
	KindEnum                  // ENUM
	KindSet                   // SET
	KindBit                   // BIT
)

var kindNames = [...]string{"unknown", "int", "float", "double", "decimal", "string", "bytes",
	"date", "datetime", "timestamp", "time", "year", "json", "enum", "set", "bit"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Column describes one column of an event's table.
type Column struct {
	Name string
	// Type is the MySQL column type as information_schema.COLUMNS.COLUMN_TYPE
	// spells it ("decimal(12,2)", "int(10) unsigned"); empty if unknown.
	Type     string
	Kind     Kind
	Unsigned bool
	// IntBytes is the storage size of an integer type: 1, 2, 3, 4 or 8.
	IntBytes int
	// Precision is the fractional-seconds digits of DATETIME/TIMESTAMP/TIME,
	// the scale of DECIMAL, the width of BIT; -1 when the source did not say.
	Precision int
	// Elems are the labels of an ENUM or SET, in definition order.
	Elems []string
	// Invalid says why the type lies outside MySQL's limits (a DECIMAL
	// precision above 65); ParseText rejects every value of such a column.
	// Empty for a valid type.
	Invalid string
	// Charset is the character set of a text column's bytes where they
	// are not UTF-8 ("latin1", "gbk"; information_schema's
	// CHARACTER_SET_NAME): a source that reads the raw bytes (the binlog)
	// turns them into UTF-8. Empty for UTF-8, ascii, binary and non-text
	// columns, and where the source did not say.
	Charset string
}

// MySQL's limits for DECIMAL(M,D): at most 65 digits, at most 30 of them
// after the point. A message's type text and values are held to them, so a
// message cannot choose how much memory its values take.
const (
	MaxDecimalPrecision = 65
	MaxDecimalScale     = 30
)

// ParseColumnType builds a Column from a MySQL column type such as
// "bigint(20) unsigned", "datetime(3)" or "enum('a','b')". Unknown types
// give KindUnknown, never an error: new server types must not stop a stream.
func ParseColumnType(name, typ string) Column {
	c := Column{Name: name, Type: typ, Precision: -1}
	t := strings.ToLower(strings.TrimSpace(typ))
	base, args := t, ""
	if i := strings.IndexByte(t, '('); i >= 0 {
		base = t[:i]
		if j := strings.LastIndexByte(t, ')'); j > i {
			args = t[i+1 : j]
		}
	} else if i := strings.IndexByte(t, ' '); i >= 0 {
		base = t[:i]
	}
	c.Unsigned = strings.Contains(t, "unsigned")
	switch base {
	case "tinyint", "bool", "boolean":
		c.Kind, c.IntBytes = KindInt, 1
	case "smallint":
		c.Kind, c.IntBytes = KindInt, 2
	case "mediumint":
		c.Kind, c.IntBytes = KindInt, 3
	case "int", "integer":
		c.Kind, c.IntBytes = KindInt, 4
	case "bigint":
		c.Kind, c.IntBytes = KindInt, 8
	case "float":
		c.Kind = KindFloat
	case "double", "real", "double precision":
		c.Kind = KindDouble
	case "decimal", "numeric", "dec", "fixed":
		c.Kind, c.Precision = KindDecimal, 0
		m, d, hasScale := strings.Cut(args, ",")
		// An out-of-range number parses as the largest int with an error:
		// kept, so NormalizeDecimal rejects it. Other junk leaves the scale
		// unknown (-1); values stay bounded by the 65-digit limit.
		if p, err := strconv.Atoi(strings.TrimSpace(m)); (err == nil || errors.Is(err, strconv.ErrRange)) && p > MaxDecimalPrecision {
			c.Invalid = fmt.Sprintf("decimal precision %s exceeds MySQL's maximum of %d", strings.TrimSpace(m), MaxDecimalPrecision)
		}
		if hasScale {
			n, err := strconv.Atoi(strings.TrimSpace(d))
			switch {
			case (err == nil || errors.Is(err, strconv.ErrRange)) && n >= 0:
				c.Precision = n
			default:
				c.Precision = -1
			}
		}
	case "char", "varchar", "tinytext", "text", "mediumtext", "longtext", "nchar", "nvarchar":
		c.Kind = KindString
	case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob",
		"geometry", "point", "linestring", "polygon", "multipoint", "multilinestring",
		"multipolygon", "geometrycollection", "geomcollection", "vector":
		c.Kind = KindBytes
	case "date":
		c.Kind = KindDate
	case "datetime", "timestamp", "time":
		c.Kind = map[string]Kind{"datetime": KindDateTime, "timestamp": KindTimestamp, "time": KindTime}[base]
		c.Precision = 0
		if args != "" {
			c.Precision, _ = strconv.Atoi(args)
		}
	case "year":
		c.Kind = KindYear
	case "json":
		c.Kind = KindJSON
	case "enum", "set":
		c.Kind = KindEnum
		if base == "set" {
			c.Kind = KindSet
		}
		c.Elems = parseElems(args)
	case "bit":
		c.Kind, c.Precision = KindBit, 1
		if args != "" {
			c.Precision, _ = strconv.Atoi(args)
		}
	}
	return c
}

// parseElems splits "'a','b”c'" into labels.
func parseElems(s string) []string {
	var out []string
	for i := 0; i < len(s); i++ {
		if s[i] != '\'' {
			continue
		}
		var b strings.Builder
		for i++; i < len(s); i++ {
			if s[i] == '\'' {
				if i+1 < len(s) && s[i+1] == '\'' {
					b.WriteByte('\'')
					i++
					continue
				}
				break
			}
			if s[i] == '\\' && i+1 < len(s) {
				i++
			}
			b.WriteByte(s[i])
		}
		out = append(out, b.String())
	}
	return out
}

// Int returns the canonical Value for an integer: int64 when it fits.
func Int(u uint64) Value {
	if u <= math.MaxInt64 {
		return int64(u)
	}
	return u
}

// ParseText converts MySQL's text form of a value (what the client
// protocol, canal JSON and mysqldump show) to the typed Value for col.
// It is the one place text becomes typed, so every string-carrying source
// agrees with the others.
func ParseText(col *Column, s string) (Value, error) {
	return ParseTextIn(nil, col, s)
}

// ParseTextIn is ParseText with the Value boxed in a (nil: on its own).
func ParseTextIn(a *Arena, col *Column, s string) (Value, error) {
	if col.Invalid != "" {
		return nil, fmt.Errorf("column %s: %s", col.Name, col.Invalid)
	}
	switch col.Kind {
	case KindInt, KindYear, KindBit:
		unsigned := col.Unsigned || col.Kind == KindBit
		if n, ok := ShortInt(s, !unsigned); ok {
			return a.Int64(n), nil
		}
		if unsigned {
			u, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("column %s: %q is not an unsigned integer", col.Name, s)
			}
			return a.Int(u), nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("column %s: %q is not an integer", col.Name, s)
		}
		return a.Int64(n), nil
	case KindFloat:
		f, err := strconv.ParseFloat(s, 32)
		if err != nil {
			return nil, fmt.Errorf("column %s: %q is not a float", col.Name, s)
		}
		return a.Float64(f), nil
	case KindDouble:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("column %s: %q is not a double", col.Name, s)
		}
		return a.Float64(f), nil
	case KindDecimal:
		d, err := NormalizeDecimal(s, col.Precision)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", col.Name, err)
		}
		return a.Decimal(d), nil
	case KindBytes:
		return []byte(s), nil
	case KindDate, KindDateTime, KindTimestamp:
		return parseDateTime(a, s)
	case KindTime:
		d, err := ParseTime(s)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", col.Name, err)
		}
		return d, nil
	case KindJSON:
		return JSON(s), nil
	case KindSet:
		if s == "" {
			return Set{}, nil
		}
		return Set(strings.Split(s, ",")), nil
	}
	return a.String(s), nil
}

// ShortInt parses the integers strconv.ParseInt (signed) or ParseUint
// would that fit in 18 digits, with a '-' sign only when signed, with
// their result; anything else (a '+', 19 digits or more, junk) is not ok
// and is left to strconv. It is the fast path of every integer column.
func ShortInt(s string, signed bool) (int64, bool) {
	neg := signed && len(s) > 1 && s[0] == '-'
	if neg {
		s = s[1:]
	}
	if len(s) == 0 || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i] - '0'
		if c > 9 {
			return 0, false
		}
		n = n*10 + int64(c)
	}
	if neg {
		n = -n
	}
	return n, true
}

// NormalizeDecimal checks that s is a decimal number and pads or keeps its
// fraction to scale digits (scale < 0 keeps s as it is), so 1234.5 with
// scale 2 becomes "1234.50", as MySQL prints it. It enforces MySQL's limits
// on the scale and on the result: at most MaxDecimalScale fraction digits
// and MaxDecimalPrecision digits in all.
func NormalizeDecimal(s string, scale int) (Decimal, error) {
	if scale > MaxDecimalScale {
		return "", fmt.Errorf("decimal scale %d exceeds MySQL's maximum of %d", scale, MaxDecimalScale)
	}
	d, err := normalizeDecimal(s, scale)
	if err != nil {
		return "", err
	}
	return d, CheckDecimal(d)
}

// CheckDecimal reports whether d is within MySQL's DECIMAL limits: at most
// MaxDecimalPrecision digits, MaxDecimalScale of them after the point.
func CheckDecimal(d Decimal) error {
	s := strings.TrimPrefix(string(d), "-")
	intPart, frac, _ := strings.Cut(s, ".")
	if n := len(intPart) + len(frac); n > MaxDecimalPrecision {
		return fmt.Errorf("decimal has %d digits, more than MySQL's maximum of %d", n, MaxDecimalPrecision)
	}
	if len(frac) > MaxDecimalScale {
		return fmt.Errorf("decimal has %d fraction digits, more than MySQL's maximum of %d", len(frac), MaxDecimalScale)
	}
	return nil
}

func normalizeDecimal(s string, scale int) (Decimal, error) {
	body := s
	if strings.HasPrefix(body, "-") || strings.HasPrefix(body, "+") {
		body = body[1:]
	}
	intPart, frac, hasDot := strings.Cut(body, ".")
	if intPart == "" && frac == "" || !allDigits(intPart) || !allDigits(frac) {
		if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) && scale >= 0 {
			// exponent notation (1.0E10) as some producers print big values
			return Decimal(strconv.FormatFloat(f, 'f', scale, 64)), nil
		}
		return "", fmt.Errorf("%q is not a decimal", s)
	}
	if strings.HasPrefix(s, "+") {
		s = s[1:]
	}
	if scale < 0 || len(frac) == scale {
		return Decimal(s), nil
	}
	if len(frac) < scale {
		if !hasDot {
			s += "."
		}
		return Decimal(s + strings.Repeat("0", scale-len(frac))), nil
	}
	// more digits than the scale: only trailing zeros may go
	extra := frac[scale:]
	if strings.Trim(extra, "0") != "" {
		return Decimal(s), nil
	}
	s = s[:len(s)-len(extra)]
	return Decimal(strings.TrimSuffix(s, ".")), nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// ParseDateTime parses "YYYY-MM-DD[ HH:MM:SS[.ffffff]]" (also with a T) as a
// UTC time. Zero and otherwise invalid dates MySQL accepts
// ("0000-00-00 00:00:00", "2024-02-00") come back as the string itself.
func ParseDateTime(s string) (Value, error) {
	return parseDateTime(nil, s)
}

func parseDateTime(a *Arena, s string) (Value, error) {
	if t, ok := parseDateTimeFast(s); ok {
		return a.Time(t), nil
	}
	if len(s) < 10 || s[4] != '-' || s[7] != '-' {
		return nil, fmt.Errorf("%q is not a date", s)
	}
	layout := "2006-01-02"
	if len(s) > 10 {
		if s[10] == 'T' {
			layout = "2006-01-02T15:04:05.999999999"
		} else {
			layout = "2006-01-02 15:04:05.999999999"
		}
		if strings.HasSuffix(s, "Z") {
			layout += "Z07:00"
		}
	}
	t, err := time.ParseInLocation(layout, s, time.UTC)
	if err != nil {
		if allDigits(s[:4]) && allDigits(s[5:7]) && allDigits(s[8:10]) {
			return s, nil // zero or partial date: keep MySQL's text
		}
		return nil, fmt.Errorf("%q is not a date/time", s)
	}
	return a.Time(t.UTC()), nil
}

// parseDateTimeFast handles the common "YYYY-MM-DD[ HH:MM:SS[.f{1,9}]]"
// without time.Parse, which dominates text decoding profiles. It declines
// (ok=false) anything else, including dates a calendar rejects. The result
// is what time.Date(..., time.UTC) gives, computed from the day number
// (TestFastDateTimeIsTimeDate), as this runs for every temporal value.
func parseDateTimeFast(s string) (time.Time, bool) {
	n := len(s)
	if n != 10 && (n < 19 || s[10] != ' ' || s[13] != ':' || s[16] != ':') || s[4] != '-' || s[7] != '-' {
		return time.Time{}, false
	}
	y, ok1 := digits4(s[0:4])
	mo, ok2 := digits2(s[5:7])
	d, ok3 := digits2(s[8:10])
	if !ok1 || !ok2 || !ok3 || mo < 1 || mo > 12 || d < 1 || d > daysIn(y, mo) {
		return time.Time{}, false
	}
	var sec, ns int64
	if n > 10 {
		h, ok4 := digits2(s[11:13])
		mi, ok5 := digits2(s[14:16])
		se, ok6 := digits2(s[17:19])
		if !ok4 || !ok5 || !ok6 || h > 23 || mi > 59 || se > 59 {
			return time.Time{}, false
		}
		sec = int64(h*3600 + mi*60 + se)
		if n > 19 {
			if s[19] != '.' || n == 20 || n > 29 {
				return time.Time{}, false
			}
			f := int64(0)
			for i := 20; i < n; i++ {
				c := s[i] - '0'
				if c > 9 {
					return time.Time{}, false
				}
				f = f*10 + int64(c)
			}
			for i := n - 20; i < 9; i++ {
				f *= 10
			}
			ns = f
		}
	}
	return time.Unix(daysFromCivil(y, mo, d)*86400+sec, ns).UTC(), true
}

func digits2(s string) (int, bool) {
	a, b := s[0]-'0', s[1]-'0'
	return int(a)*10 + int(b), a <= 9 && b <= 9
}

func digits4(s string) (int, bool) {
	a, b, c, d := s[0]-'0', s[1]-'0', s[2]-'0', s[3]-'0'
	return int(a)*1000 + int(b)*100 + int(c)*10 + int(d), a <= 9 && b <= 9 && c <= 9 && d <= 9
}

// daysFromCivil is the number of days from 1970-01-01 to y-m-d in the
// proleptic Gregorian calendar, as time.Date counts them (H. Hinnant's
// days_from_civil), for 0 <= y <= 9999.
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400 // [0, 399]
	mp := (m + 9) % 12 // March is 0
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}

func daysIn(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// ParseTime parses a TIME value "[-]HHH:MM:SS[.ffffff]".
func ParseTime(s string) (time.Duration, error) {
	neg := strings.HasPrefix(s, "-")
	body := strings.TrimPrefix(s, "-")
	parts := strings.Split(body, ":")
	if len(parts) != 3 {
		return 0, fmt.Errorf("%q is not a time", s)
	}
	h, err1 := strconv.ParseUint(parts[0], 10, 32)
	m, err2 := strconv.ParseUint(parts[1], 10, 8)
	secPart, frac, _ := strings.Cut(parts[2], ".")
	sec, err3 := strconv.ParseUint(secPart, 10, 8)
	if err1 != nil || err2 != nil || err3 != nil || m > 59 || sec > 59 || len(frac) > 9 || !allDigits(frac) {
		return 0, fmt.Errorf("%q is not a time", s)
	}
	var ns int64
	if frac != "" {
		n, _ := strconv.ParseInt((frac + "000000000")[:9], 10, 64)
		ns = n
	}
	d := time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(sec)*time.Second + time.Duration(ns)
	if neg {
		d = -d
	}
	return d, nil
}

// FormatText renders v in MySQL's text form for col, the form written into
// Redis hashes: DECIMAL exact, DATETIME "YYYY-MM-DD HH:MM:SS[.ffffff]" with
// the column's fractional digits, BLOB raw bytes, SET comma-joined. NULL
// renders as "" with ok=false. AppendText is the same text appended to a
// buffer.
func FormatText(col *Column, v Value) (s string, ok bool) {
	switch x := v.(type) {
	case nil:
		return "", false
	case string:
		return x, true
	case Decimal:
		return string(x), true
	case JSON:
		return string(x), true
	}
	var buf [32]byte
	b, ok := AppendText(buf[:0], col, v)
	return string(b), ok
}

// AppendText appends FormatText's text of v to dst. For NULL it returns
// dst unchanged and ok=false. Callers that format many values (a Redis
// hash per row) append into one buffer instead of allocating a string
// per value.
func AppendText(dst []byte, col *Column, v Value) (b []byte, ok bool) {
	switch x := v.(type) {
	case nil:
		return dst, false
	case string:
		return append(dst, x...), true
	case []byte:
		return append(dst, x...), true
	case int64:
		return strconv.AppendInt(dst, x, 10), true
	case uint64:
		return strconv.AppendUint(dst, x, 10), true
	case int:
		return strconv.AppendInt(dst, int64(x), 10), true
	case float64:
		bits := 64
		if col != nil && col.Kind == KindFloat {
			bits = 32
		}
		return AppendFloat(dst, x, bits), true
	case Decimal:
		return append(dst, x...), true
	case JSON:
		return append(dst, x...), true
	case Set:
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, e...)
		}
		return dst, true
	case bool:
		if x {
			return append(dst, '1'), true
		}
		return append(dst, '0'), true
	case time.Time:
		prec, kind := -1, KindDateTime
		if col != nil {
			prec, kind = col.Precision, col.Kind
		}
		return AppendDateTime(dst, x, kind, prec), true
	case time.Duration:
		prec := -1
		if col != nil {
			prec = col.Precision
		}
		return AppendDuration(dst, x, prec), true
	}
	return fmt.Append(dst, v), true
}

// FormatFloat prints a FLOAT (bits 32) or DOUBLE the way MySQL does: the
// shortest text that reads back the same, plain digits for moderate
// magnitudes and "1e20" style beyond.
func FormatFloat(f float64, bits int) string {
	var buf [32]byte
	return string(AppendFloat(buf[:0], f, bits))
}

// AppendFloat appends FormatFloat's text of f to dst.
func AppendFloat(dst []byte, f float64, bits int) []byte {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return strconv.AppendFloat(dst, f, 'g', -1, bits)
	}
	abs := math.Abs(f)
	if abs == 0 || (abs >= 1e-5 && abs < 1e15) {
		return strconv.AppendFloat(dst, f, 'f', -1, bits)
	}
	at := len(dst)
	dst = strconv.AppendFloat(dst, f, 'g', -1, bits)
	if i := bytes.Index(dst[at:], []byte("e+")); i >= 0 {
		i += at + 1 // drop the '+'
		dst = append(dst[:i], dst[i+1:]...)
	}
	return dst
}

// FormatDateTime renders t for kind with prec fractional digits; prec < 0
// prints as many as needed (none for whole seconds). It formats by hand:
// it runs once per temporal column of every row written.
func FormatDateTime(t time.Time, kind Kind, prec int) string {
	var buf [32]byte
	return string(AppendDateTime(buf[:0], t, kind, prec))
}

// AppendDateTime appends FormatDateTime's text of t to dst.
//
// It reads the calendar date and the clock off t's Unix seconds in UTC
// with integer arithmetic (civilDate) instead of t.Date and t.Clock, which
// each work out the absolute time again: the two cost a temporal column
// about as much as all the rest of writing it.
func AppendDateTime(dst []byte, t time.Time, kind Kind, prec int) []byte {
	unix := t.Unix()
	days, secs := unix/86400, unix%86400
	if secs < 0 {
		days, secs = days-1, secs+86400
	}
	y, mo, d := civilDate(days)
	if y < 0 || y > 9999 {
		return t.UTC().AppendFormat(dst, "2006-01-02 15:04:05")
	}
	// Written into a fixed buffer, then appended once: one bounds check
	// per digit pair, not one growth check per append.
	var buf [26]byte // 2006-01-02 15:04:05.000000
	put2(buf[0:], int(y)/100)
	put2(buf[2:], int(y)%100)
	buf[4] = '-'
	put2(buf[5:], mo)
	buf[7] = '-'
	put2(buf[8:], d)
	if kind == KindDate {
		return append(dst, buf[:10]...)
	}
	s := uint(secs) // [0, 86400): unsigned divisions skip the sign fix-ups
	buf[10] = ' '
	put2(buf[11:], int(s/3600))
	buf[13] = ':'
	put2(buf[14:], int(s/60%60))
	buf[16] = ':'
	put2(buf[17:], int(s%60))
	n := 19
	if ns := t.Nanosecond(); prec > 0 || (prec < 0 && ns != 0) {
		us := uint(ns) / 1000
		put2(buf[20:], int(us/10000))
		put2(buf[22:], int(us/100%100))
		put2(buf[24:], int(us%100))
		buf[19] = '.'
		switch {
		case prec < 0:
			n = 26
			for n > 21 && buf[n-1] == '0' {
				n--
			}
		case prec < 6:
			n = 20 + prec
		default:
			n = 26
		}
	}
	return append(dst, buf[:n]...)
}

// put2 writes v (0 <= v < 100) as two decimal digits to b[0:2].
func put2(b []byte, v int) {
	_ = b[1]
	u := 2 * (uint(v) % 100) // a bound the compiler can see; v is in range
	b[0], b[1] = digitPairs[u], digitPairs[u+1]
}

const digitPairs = "00010203040506070809101112131415161718192021222324252627282930313233343536373839" +
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879" +
	"8081828384858687888990919293949596979899"

// civilDate returns the proleptic Gregorian date of the day days after
// 1970-01-01 (Howard Hinnant's days-to-civil algorithm, eras of 400
// years), for days within a few million years of 1970.
func civilDate(days int64) (year int64, month, day int) {
	z := days + 719468 // days since 0000-03-01
	era := z
	if era < 0 {
		era -= 146096
	}
	era /= 146097
	doe := uint64(z - era*146097)                          // [0, 146096]
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365 // [0, 399]
	doy := doe - (365*yoe + yoe/4 - yoe/100)               // [0, 365], from March 1
	mp := (5*doy + 2) / 153                                // [0, 11], from March
	day = int(doy - (153*mp+2)/5 + 1)
	month = int(mp + 3)
	if month > 12 {
		month -= 12
	}
	year = int64(yoe) + era*400
	if month <= 2 {
		year++
	}
	return year, month, day
}

func append4(b []byte, v int) []byte {
	return append(b, byte('0'+v/1000), byte('0'+v/100%10), byte('0'+v/10%10), byte('0'+v%10))
}

func append2(b []byte, sep byte, v int) []byte {
	return append(b, sep, byte('0'+v/10), byte('0'+v%10))
}

// FormatDuration renders a TIME value "[-]HH:MM:SS[.f]".
func FormatDuration(d time.Duration, prec int) string {
	var buf [32]byte
	return string(AppendDuration(buf[:0], d, prec))
}

// AppendDuration appends FormatDuration's text of d to dst.
func AppendDuration(b []byte, d time.Duration, prec int) []byte {
	if d < 0 {
		b, d = append(b, '-'), -d
	}
	h := int64(d / time.Hour)
	if h < 10 {
		b = append(b, '0')
	}
	b = strconv.AppendInt(b, h, 10)
	b = append2(b, ':', int(d%time.Hour/time.Minute))
	b = append2(b, ':', int(d%time.Minute/time.Second))
	return appendFraction(b, int(d%time.Second), prec)
}

// appendFraction appends ".ffffff" cut to prec digits (at most 6, MySQL's
// limit); prec < 0 keeps the significant digits, none for whole seconds.
func appendFraction(b []byte, ns int, prec int) []byte {
	if prec == 0 || (prec < 0 && ns == 0) {
		return b
	}
	var digits [6]byte
	us := ns / 1000
	for i := 5; i >= 0; i-- {
		digits[i] = byte('0' + us%10)
		us /= 10
	}
	n := 6
	if prec < 0 {
		for n > 1 && digits[n-1] == '0' {
			n--
		}
	} else if prec < 6 {
		n = prec
	}
	b = append(b, '.')
	return append(b, digits[:n]...)
}
