package changegen

import (
	"bytes"
	"strconv"

	"github.com/rowsync/rowsync/cdc"
)

// JSONLLossy names the columns whose JSON-lines text differs from the
// typed value's MySQL text: the format prints canal's value text (ENUM
// index, SET bitmask, Java double text, BLOB as ISO-8859-1) untyped, so a
// decoder cannot undo it. NULL prints as "" too, for every column.
var JSONLLossy = map[string]bool{"score": true, "avatar": true, "status": true, "tags": true}

// JSONL encodes c as one liukelin/canal_mysql_nosql_sync line (with CRLF):
// values are canal's text, NULL is "", and a DELETE carries the deleted
// row in "after". The format has no key, no types and no NULL; see
// JSONLLossy.
func JSONL(c *Change) []byte {
	t := c.Table
	obj := func(row *cdc.Row) []byte {
		if row == nil {
			return []byte(`""`)
		}
		var b bytes.Buffer
		b.WriteByte('{')
		for i := range t.cols {
			col := &t.cols[i]
			if i > 0 {
				b.WriteByte(',')
			}
			s, _ := canalText(col, row.Get(col.Name))
			b.Write(jsonString(col.Name))
			b.WriteByte(':')
			b.Write(jsonString(s))
		}
		b.WriteByte('}')
		return b.Bytes()
	}
	var typ string
	before, after := c.Before, c.After
	switch c.Op {
	case cdc.Insert:
		typ = "INSERT"
	case cdc.Update:
		typ = "UPDATE"
	case cdc.Delete:
		typ, before, after = "DELETE", nil, c.Before
	}
	var b bytes.Buffer
	b.WriteString(`{"binlog":"` + BinlogFile + ":" + strconv.FormatUint(c.Offset(), 10) + `","db":`)
	b.Write(jsonString(t.DB))
	b.WriteString(`,"table":`)
	b.Write(jsonString(t.Name))
	b.WriteString(`,"eventType":"` + typ + `","before":`)
	b.Write(obj(before))
	b.WriteString(`,"after":`)
	b.Write(obj(after))
	b.WriteString(`,"time":"` + c.Commit.Format("2006-01-02 15:04:05") + "\"}\r\n")
	return b.Bytes()
}
