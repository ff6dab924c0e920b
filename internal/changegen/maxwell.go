package changegen

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/rowsync/rowsync/cdc"
)

// maxwellValue is the JSON Maxwell writes for a value of col.
func maxwellValue(col *cdc.Column, v cdc.Value) json.RawMessage {
	switch x := v.(type) {
	case nil:
		return json.RawMessage("null")
	case []byte:
		return jsonString(base64.StdEncoding.EncodeToString(x))
	case cdc.JSON:
		return json.RawMessage(x) // embedded, not a string
	case cdc.Set:
		b, _ := json.Marshal([]string(x))
		if x == nil || len(x) == 0 {
			b = []byte("[]")
		}
		return b
	case cdc.Decimal:
		return json.RawMessage(x) // a JSON number with its scale
	case float64:
		return json.RawMessage(javaDouble(x)) // Jackson prints a double as Java does
	case int64, uint64:
		s, _ := cdc.FormatText(col, x)
		return json.RawMessage(s)
	case time.Time:
		s, _ := canalText(col, x) // yyyy-MM-dd[ HH:mm:ss.fff]
		return jsonString(s)
	case string:
		return jsonString(x)
	}
	s, _ := cdc.FormatText(col, v)
	return jsonString(s)
}

func jsonString(s string) json.RawMessage {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return bytes.TrimRight(buf.Bytes(), "\n")
}

// maxwellObject writes the members in table order (Maxwell keeps it).
func maxwellObject(t *Table, row *cdc.Row, only map[string]bool) json.RawMessage {
	var b bytes.Buffer
	b.WriteByte('{')
	first := true
	for i := range t.cols {
		c := &t.cols[i]
		if only != nil && !only[c.Name] {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.Write(jsonString(c.Name))
		b.WriteByte(':')
		b.Write(maxwellValue(c, row.Get(c.Name)))
	}
	b.WriteByte('}')
	return b.Bytes()
}

// MaxwellKey is Maxwell's default Kafka key (kafka_key_format=hash) for c.
func MaxwellKey(c *Change) []byte {
	t := c.Table
	var b bytes.Buffer
	b.WriteString(`{"database":`)
	b.Write(jsonString(t.DB))
	b.WriteString(`,"table":`)
	b.Write(jsonString(t.Name))
	img := c.Image()
	for _, name := range t.PK {
		b.WriteByte(',')
		b.Write(jsonString("pk." + strings.ToLower(name)))
		b.WriteByte(':')
		b.Write(maxwellValue(t.Column(name), img.Get(name)))
	}
	b.WriteByte('}')
	return b.Bytes()
}

// Maxwell encodes c as one Maxwell row message (output_nulls on, commit
// info on, no primary_key_columns: the key comes from the Kafka key or the
// table-create schema). Maxwell has no DECIMAL scale in its schema, so a
// DECIMAL keeps the digits written here (always its full scale, as Maxwell
// writes a BigDecimal).
func Maxwell(c *Change) []byte { return maxwell(c, false) }

// MaxwellPosition is Maxwell with output_binlog_position on: the message
// also carries "position": BinlogFile + ":" + c.Offset(), which increases
// with Seq.
func MaxwellPosition(c *Change) []byte { return maxwell(c, true) }

func maxwell(c *Change, withPosition bool) []byte {
	t := c.Table
	var b bytes.Buffer
	b.WriteString(`{"database":`)
	b.Write(jsonString(t.DB))
	b.WriteString(`,"table":`)
	b.Write(jsonString(t.Name))
	b.WriteString(`,"type":"` + c.Op.String() + `"`)
	b.WriteString(`,"ts":` + strconv.FormatInt(c.Commit.Unix(), 10))
	b.WriteString(`,"xid":` + strconv.Itoa(50000+c.Seq))
	b.WriteString(`,"commit":true`)
	if withPosition {
		b.WriteString(`,"position":"` + BinlogFile + ":" + strconv.FormatUint(c.Offset(), 10) + `"`)
	}
	b.WriteString(`,"data":`)
	b.Write(maxwellObject(t, c.Image(), nil))
	if c.Op == cdc.Update {
		changed := map[string]bool{}
		for i := range t.cols {
			col := &t.cols[i]
			if !bytes.Equal(maxwellValue(col, c.Before.Get(col.Name)), maxwellValue(col, c.After.Get(col.Name))) {
				changed[col.Name] = true
			}
		}
		if len(changed) > 0 {
			b.WriteString(`,"old":`)
			b.Write(maxwellObject(t, c.Before, changed))
		}
	}
	b.WriteByte('}')
	return b.Bytes()
}

// MaxwellTableCreate is the table-create DDL message (output_ddl) that
// teaches a Maxwell decoder t's column types.
func MaxwellTableCreate(t *Table, ts time.Time) []byte {
	type colDef struct {
		Type         string   `json:"type"`
		Name         string   `json:"name"`
		Signed       *bool    `json:"signed,omitempty"`
		Charset      string   `json:"charset,omitempty"`
		EnumValues   []string `json:"enum-values,omitempty"`
		ColumnLength *int     `json:"column-length,omitempty"`
		Precision    *int     `json:"precision,omitempty"`
		Scale        *int     `json:"scale,omitempty"`
	}
	var cols []colDef
	for i, d := range t.Defs {
		c := &t.cols[i]
		base := strings.ToLower(d.Type)
		if j := strings.IndexAny(base, "( "); j >= 0 {
			base = base[:j]
		}
		cd := colDef{Type: base, Name: d.Name}
		switch c.Kind {
		case cdc.KindInt:
			signed := !c.Unsigned
			cd.Signed = &signed
		case cdc.KindString:
			cd.Charset = "utf8mb4"
		case cdc.KindEnum, cdc.KindSet:
			cd.EnumValues = c.Elems
			cd.Charset = "utf8mb4"
		case cdc.KindDateTime, cdc.KindTimestamp, cdc.KindTime:
			n := c.Precision
			cd.ColumnLength = &n
		case cdc.KindDecimal:
			p, s := 12, c.Precision
			cd.Precision, cd.Scale = &p, &s
		}
		cols = append(cols, cd)
	}
	msg := map[string]any{
		"type": "table-create", "database": t.DB, "table": t.Name,
		"def": map[string]any{"database": t.DB, "charset": "utf8mb4", "table": t.Name,
			"columns": cols, "primary-key": t.PK},
		"ts":  ts.UnixMilli(),
		"sql": "CREATE TABLE " + t.Name + " (...)",
	}
	b, err := json.Marshal(msg)
	if err != nil {
		panic(err)
	}
	return b
}
