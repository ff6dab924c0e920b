package changegen

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rowsync/rowsync/cdc"
)

// Message is one transport message: a Kafka record (Key may be nil) or an
// AMQP body (Value only). A nil Value is a tombstone.
type Message struct {
	Key, Value []byte
}

// debeziumField is the Connect schema of one column, with
// column.propagate.source.type parameters so the decoder knows the exact
// MySQL type (DATETIME precision, DECIMAL scale, BIGINT UNSIGNED).
func debeziumField(t *Table, i int) map[string]any {
	c := &t.cols[i]
	d := t.Defs[i]
	f := map[string]any{"field": c.Name, "optional": d.Nullable}
	typ := strings.ToUpper(d.Type)
	base := typ
	if j := strings.IndexAny(base, "( "); j >= 0 {
		base = base[:j]
	}
	params := map[string]string{"__debezium.source.column.type": base}
	if c.Unsigned {
		params["__debezium.source.column.type"] = base + " UNSIGNED"
	}
	switch c.Kind {
	case cdc.KindInt:
		f["type"] = map[int]string{1: "int16", 2: "int16", 3: "int32", 4: "int32", 8: "int64"}[c.IntBytes]
		if c.Unsigned && c.IntBytes == 4 {
			f["type"] = "int64"
		}
		params["__debezium.source.column.length"] = map[int]string{1: "4", 2: "6", 3: "9", 4: "11", 8: "20"}[c.IntBytes]
	case cdc.KindDecimal:
		f["type"], f["name"], f["version"] = "bytes", "org.apache.kafka.connect.data.Decimal", 1
		prec := strings.TrimSuffix(strings.SplitN(strings.TrimPrefix(strings.ToLower(d.Type), "decimal("), ",", 2)[0], ")")
		params["scale"] = strconv.Itoa(c.Precision)
		params["connect.decimal.precision"] = prec
		params["__debezium.source.column.length"] = prec
		params["__debezium.source.column.scale"] = strconv.Itoa(c.Precision)
	case cdc.KindDouble:
		f["type"] = "double"
	case cdc.KindFloat:
		f["type"] = "float"
	case cdc.KindString:
		f["type"] = "string"
		if i := strings.IndexByte(d.Type, '('); i >= 0 {
			params["__debezium.source.column.length"] = strings.Trim(d.Type[i:], "()")
		}
	case cdc.KindBytes:
		f["type"] = "bytes"
	case cdc.KindDate:
		f["type"], f["name"], f["version"] = "int32", "io.debezium.time.Date", 1
	case cdc.KindDateTime:
		f["type"], f["version"] = "int64", 1
		f["name"] = "io.debezium.time.Timestamp"
		if c.Precision > 3 {
			f["name"] = "io.debezium.time.MicroTimestamp"
		}
		params["__debezium.source.column.length"] = strconv.Itoa(c.Precision)
	case cdc.KindJSON:
		f["type"], f["name"], f["version"] = "string", "io.debezium.data.Json", 1
	case cdc.KindEnum:
		f["type"], f["name"], f["version"] = "string", "io.debezium.data.Enum", 1
		params["allowed"] = strings.Join(c.Elems, ",")
	case cdc.KindSet:
		f["type"], f["name"], f["version"] = "string", "io.debezium.data.EnumSet", 1
		params["allowed"] = strings.Join(c.Elems, ",")
	default:
		f["type"] = "string"
	}
	f["parameters"] = params
	return f
}

// debeziumValue is the JSON Debezium writes for a value of col with the
// default converters (decimal.handling.mode=precise,
// time.precision.mode=adaptive_time_microseconds,
// bigint.unsigned.handling.mode=long).
func debeziumValue(col *cdc.Column, v cdc.Value) any {
	switch x := v.(type) {
	case nil:
		return nil
	case uint64:
		return int64(x) // long mode: wraps negative above 2^63-1
	case int64:
		return x
	case float64:
		return json.RawMessage(javaDouble(x))
	case cdc.Decimal:
		return base64.StdEncoding.EncodeToString(unscaledBytes(string(x)))
	case []byte:
		return base64.StdEncoding.EncodeToString(x)
	case time.Time:
		switch {
		case col.Kind == cdc.KindDate:
			return x.Unix() / 86400
		case col.Precision > 3:
			return x.UnixMicro()
		}
		return x.UnixMilli()
	case cdc.JSON:
		return string(x)
	case cdc.Set:
		return strings.Join(x, ",")
	case string:
		return x
	}
	s, _ := cdc.FormatText(col, v)
	return s
}

// unscaledBytes is the big-endian two's-complement unscaled integer of a
// decimal text, as Connect's Decimal writes it.
func unscaledBytes(s string) []byte {
	n, ok := new(big.Int).SetString(strings.Replace(s, ".", "", 1), 10)
	if !ok {
		panic("changegen: bad decimal " + s)
	}
	if n.Sign() >= 0 {
		b := n.Bytes()
		if len(b) == 0 || b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return b
	}
	// two's complement of a negative number in the fewest bytes
	nbytes := len(new(big.Int).Neg(n).Bytes()) + 1
	mod := new(big.Int).Lsh(big.NewInt(1), uint(nbytes*8))
	b := new(big.Int).Add(mod, n).Bytes()
	for len(b) < nbytes {
		b = append([]byte{0xff}, b...)
	}
	for len(b) > 1 && b[0] == 0xff && b[1]&0x80 != 0 {
		b = b[1:]
	}
	return b
}

func debeziumRow(t *Table, row *cdc.Row) json.RawMessage {
	if row == nil {
		return json.RawMessage("null")
	}
	var b bytes.Buffer
	b.WriteByte('{')
	for i := range t.cols {
		c := &t.cols[i]
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(jsonString(c.Name))
		b.WriteByte(':')
		b.Write(marshal(debeziumValue(c, row.Get(c.Name))))
	}
	b.WriteByte('}')
	return b.Bytes()
}

func marshal(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n")
}

// debeziumSchemas caches the envelope and key schema text per table.
var (
	debeziumMu      sync.Mutex
	debeziumSchemas = map[*Table][2]json.RawMessage{}
)

// debeziumSchema returns the envelope and key schema text of t.
func debeziumSchema(t *Table) [2]json.RawMessage {
	debeziumMu.Lock()
	defer debeziumMu.Unlock()
	s, ok := debeziumSchemas[t]
	if !ok {
		s = newDebeziumSchema(t)
		debeziumSchemas[t] = s
	}
	return s
}

func newDebeziumSchema(t *Table) [2]json.RawMessage {
	var fields, keyFields []any
	for i := range t.cols {
		f := debeziumField(t, i)
		fields = append(fields, f)
		if t.isPK(t.cols[i].Name) {
			keyFields = append(keyFields, f)
		}
	}
	prefix := "rowsync." + t.DB + "." + t.Name
	row := func(field string) map[string]any {
		return map[string]any{"type": "struct", "fields": fields, "optional": true, "name": prefix + ".Value", "field": field}
	}
	source := map[string]any{"type": "struct", "optional": false, "name": "io.debezium.connector.mysql.Source", "field": "source",
		"fields": []any{
			map[string]any{"type": "string", "optional": false, "field": "version"},
			map[string]any{"type": "string", "optional": false, "field": "connector"},
			map[string]any{"type": "string", "optional": false, "field": "name"},
			map[string]any{"type": "int64", "optional": false, "field": "ts_ms"},
			map[string]any{"type": "string", "optional": false, "field": "db"},
			map[string]any{"type": "string", "optional": true, "field": "table"},
			map[string]any{"type": "string", "optional": false, "field": "file"},
			map[string]any{"type": "int64", "optional": false, "field": "pos"},
			map[string]any{"type": "int32", "optional": false, "field": "row"},
		}}
	env := map[string]any{"type": "struct", "optional": false, "name": prefix + ".Envelope", "version": 1,
		"fields": []any{row("before"), row("after"), source,
			map[string]any{"type": "string", "optional": false, "field": "op"},
			map[string]any{"type": "int64", "optional": true, "field": "ts_ms"}}}
	key := map[string]any{"type": "struct", "fields": keyFields, "optional": false, "name": prefix + ".Key"}
	return [2]json.RawMessage{marshal(env), marshal(key)}
}

// Debezium encodes c as the records Debezium's MySQL connector writes
// with the JsonConverter (schemas.enable as withSchema): an INSERT is "c",
// an UPDATE "u", a DELETE "d" followed by a tombstone, and a pk change a
// "d" for the old key, its tombstone and a "c" for the new key. Without a
// schema, DATE/DATETIME (numbers), DECIMAL and BLOB (base64 text), SET
// (comma text), JSON (text) and BIGINT UNSIGNED above 2^63-1 (negative)
// cannot be typed by a decoder; see the debezium package doc.
func Debezium(c *Change, withSchema bool) []Message {
	t := c.Table
	rec := func(op string, before, after *cdc.Row) Message {
		img := after
		if img == nil {
			img = before
		}
		key := keyJSON(t, img)
		var p bytes.Buffer
		p.WriteString(`{"before":`)
		p.Write(debeziumRow(t, before))
		p.WriteString(`,"after":`)
		p.Write(debeziumRow(t, after))
		p.WriteString(`,"source":{"version":"2.7.3.Final","connector":"mysql","name":"rowsync","ts_ms":`)
		p.WriteString(strconv.FormatInt(c.Commit.UnixMilli(), 10))
		p.WriteString(`,"snapshot":"false","db":`)
		p.Write(jsonString(t.DB))
		p.WriteString(`,"table":`)
		p.Write(jsonString(t.Name))
		p.WriteString(`,"server_id":1,"gtid":null,"file":"` + BinlogFile + `","pos":`)
		p.WriteString(strconv.FormatUint(c.Offset(), 10))
		p.WriteString(`,"row":0,"thread":7,"query":null},"op":"` + op + `","ts_ms":`)
		p.WriteString(strconv.FormatInt(c.Commit.UnixMilli()+15, 10))
		p.WriteString(`,"transaction":null}`)
		if !withSchema {
			return Message{Key: key, Value: p.Bytes()}
		}
		s := debeziumSchema(t)
		v := append(append(append([]byte(`{"schema":`), s[0]...), `,"payload":`...), p.Bytes()...)
		k := append(append(append([]byte(`{"schema":`), s[1]...), `,"payload":`...), key...)
		return Message{Key: append(k, '}'), Value: append(v, '}')}
	}
	tomb := func(m Message) Message { return Message{Key: m.Key} }
	switch {
	case c.Op == cdc.Insert:
		return []Message{rec("c", nil, c.After)}
	case c.Op == cdc.Delete:
		d := rec("d", c.Before, nil)
		return []Message{d, tomb(d)}
	case c.PKChange():
		d := rec("d", c.Before, nil)
		return []Message{d, tomb(d), rec("c", nil, c.After)}
	}
	return []Message{rec("u", c.Before, c.After)}
}

// keyJSON is the record key payload: the primary-key columns.
func keyJSON(t *Table, row *cdc.Row) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, name := range t.PK {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(jsonString(name))
		b.WriteByte(':')
		b.Write(marshal(debeziumValue(t.Column(name), row.Get(name))))
	}
	b.WriteByte('}')
	return b.Bytes()
}
