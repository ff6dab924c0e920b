package binlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/mysqlmeta"
)

// loadTable reads db.table's current definition. A table that no longer
// exists gives an empty definition, not an error: its old events still
// decode from the table map's own metadata.
func loadTable(ctx context.Context, cat *mysqlmeta.Catalog, db, table string) (*cdc.TableDef, error) {
	t, err := cat.Table(ctx, db, table)
	if errors.Is(err, mysqlmeta.ErrNoTable) {
		return &cdc.TableDef{}, nil
	}
	return t, err
}

// plan is how the rows of one table map decode: a name and a column type
// for every column the event carries, matched by name against the table's
// current definition.
type plan struct {
	names []string
	// layout is names as the layout of every row the plan decodes, so a
	// value goes to its column by index (Row.SetAt), no name hashed; nil
	// when names repeat one (only a table map naming a column "@N" as
	// rowsync names an unnamed one could), and rows are filled by name.
	layout  *cdc.Layout
	cols    []cdc.Column // per event column; also Event.Columns (read-only)
	binLen  []int        // BINARY(n) width to pad to, 0 otherwise
	jsonBin []bool       // MySQL's binary JSON: values arrive as go-mysql's text of it
	hasJSON bool         // some jsonBin
	pk      []string
	pkAt    []int // pk's places in layout (nil without a layout; -1: none)
	gen     uint64
	types   []byte
	metas   []uint16
	tmNames []string
	// what decodeImage needs beside types and metas: the table map's
	// signedness per column (go-mysql's UnsignedMap), and that bitmap to
	// tell table maps apart
	unsigned   []bool
	signedness []byte
	// the table's filter and plans key (schema NUL table), schema and name
	key, db, table string
	// vals boxes the values decodeValue makes, a block of them per
	// allocation instead of one each (see cdc.Arena): they live as long as
	// the rows of a batch, together.
	vals cdc.Arena
	// text holds the text of the DECIMAL values decodeValue makes, as vals
	// their boxes: appended to, never rewritten where a value points.
	text []byte
}

const (
	textBlock      = 4 << 10 // bytes per block of plan.text
	maxDecimalText = 2*cdc.MaxDecimalPrecision + 2
)

// matches reports whether p was built for a table map of the same shape.
func (p *plan) matches(tm *replication.TableMapEvent, gen uint64) bool {
	if p.gen != gen || string(p.types) != string(tm.ColumnType) || string(p.signedness) != string(tm.SignednessBitmap) ||
		!slices.Equal(p.metas, tm.ColumnMeta) || len(p.tmNames) != len(tm.ColumnName) {
		return false
	}
	// tm.ColumnNameString() would allocate the names of every table map
	for i, n := range tm.ColumnName {
		if string(n) != p.tmNames[i] {
			return false
		}
	}
	return true
}

// buildPlan matches the table map's columns to ti. Names come from the table
// map when the server logs them (binlog_row_metadata=FULL), else from ti by
// position. A column keeps ti's type only when it agrees with the binlog's
// physical type; otherwise (the event predates an ALTER, or the column was
// since dropped) the type is rebuilt from the table map itself, so an old
// event still decodes exactly.
func buildPlan(tm *replication.TableMapEvent, ti *cdc.TableDef, gen uint64, log *slog.Logger) *plan {
	n := int(tm.ColumnCount)
	p := &plan{
		names: make([]string, n), cols: make([]cdc.Column, n), binLen: make([]int, n), jsonBin: make([]bool, n), gen: gen,
		types: slices.Clone(tm.ColumnType), metas: slices.Clone(tm.ColumnMeta), tmNames: tm.ColumnNameString(),
		unsigned: make([]bool, n), signedness: slices.Clone(tm.SignednessBitmap),
	}
	tmNames := p.tmNames
	if len(tmNames) != n {
		tmNames = nil
		if len(ti.Columns) != n {
			log.Warn("binlog column count differs from the table definition and the server logs no column names; "+
				"extra columns are named @<position>", "table", string(tm.Schema)+"."+string(tm.Table),
				"binlog_columns", n, "table_columns", len(ti.Columns))
		}
	}
	unsigned := tm.UnsignedMap()
	collation := tm.CollationMap()
	enums, sets := tm.EnumStrValueMap(), tm.SetStrValueMap()
	for i := range n {
		var name string
		switch {
		case tmNames != nil:
			name = tmNames[i]
		case i < len(ti.Columns):
			name = ti.Columns[i].Name
		default:
			name = "@" + strconv.Itoa(i+1)
		}
		p.names[i] = name
		p.unsigned[i] = unsigned[i]
		syn := synthColumn(tm, i, name, unsigned, collation, enums, sets)
		col := syn
		if j, ok := ti.Index(name); ok {
			if compatible(&ti.Columns[j], &syn, unsigned != nil, collation != nil, enums[i] != nil || sets[i] != nil) {
				col = ti.Columns[j]
			} else {
				log.Debug("binlog column type differs from the current definition; using the binlog's",
					"table", string(tm.Schema)+"."+string(tm.Table), "column", name,
					"binlog_type", syn.Type, "table_type", ti.Columns[j].Type)
			}
		}
		if col.Charset != "" && !supportedCharset(col.Charset) {
			log.Warn("text column in a character set rowsync cannot turn into UTF-8; its values are passed on as the binlog's bytes",
				"table", string(tm.Schema)+"."+string(tm.Table), "column", name, "charset", col.Charset)
		}
		p.cols[i] = col
		p.binLen[i] = cdc.BinaryWidth(col.Type)
		p.jsonBin[i] = isJSONType(tm.ColumnType[i])
		p.hasJSON = p.hasJSON || p.jsonBin[i]
	}
	p.layout, _ = cdc.NewLayout(p.names)
	// primary key: the definition's, if every key column is in the event;
	// else the table map's own (FULL metadata); else none.
	if len(ti.PK) > 0 && allIn(ti.PK, p.names) {
		p.pk = ti.PK
	} else if len(tm.PrimaryKey) > 0 {
		for _, k := range tm.PrimaryKey {
			if int(k) < n {
				p.pk = append(p.pk, p.names[k])
			}
		}
	}
	if p.layout != nil {
		for _, k := range p.pk {
			i, ok := p.layout.Index(k)
			if !ok {
				i = -1
			}
			p.pkAt = append(p.pkAt, i)
		}
	}
	return p
}

func allIn(want, have []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// realType resolves MYSQL_TYPE_STRING, whose metadata hides ENUM and SET.
func realType(tp byte, meta uint16) byte {
	if tp == mysql.MYSQL_TYPE_STRING && meta >= 256 {
		b0 := byte(meta >> 8)
		if b0&0x30 != 0x30 {
			return b0 | 0x30
		}
		return b0
	}
	return tp
}

// stringLen is the byte length of a CHAR/BINARY column from its metadata.
func stringLen(meta uint16) int {
	if meta >= 256 {
		b0, b1 := byte(meta>>8), byte(meta&0xff)
		if b0&0x30 != 0x30 {
			return int(uint16(b1) | uint16((b0&0x30)^0x30)<<4)
		}
		return int(meta & 0xff)
	}
	return int(meta)
}

const binaryCollation = 63

// synthColumn builds a column type from the table map alone.
func synthColumn(tm *replication.TableMapEvent, i int, name string, unsigned map[int]bool,
	collation map[int]uint64, enums, sets map[int][]string) cdc.Column {
	meta := tm.ColumnMeta[i]
	tp := realType(tm.ColumnType[i], meta)
	uns := ""
	if unsigned[i] {
		uns = " unsigned"
	}
	coll, haveColl := collation[i]
	binary := haveColl && coll == binaryCollation
	var typ string
	switch tp {
	case mysql.MYSQL_TYPE_TINY:
		typ = "tinyint" + uns
	case mysql.MYSQL_TYPE_SHORT:
		typ = "smallint" + uns
	case mysql.MYSQL_TYPE_INT24:
		typ = "mediumint" + uns
	case mysql.MYSQL_TYPE_LONG:
		typ = "int" + uns
	case mysql.MYSQL_TYPE_LONGLONG:
		typ = "bigint" + uns
	case mysql.MYSQL_TYPE_FLOAT:
		typ = "float" + uns
	case mysql.MYSQL_TYPE_DOUBLE:
		typ = "double" + uns
	case mysql.MYSQL_TYPE_NEWDECIMAL:
		typ = fmt.Sprintf("decimal(%d,%d)%s", meta>>8, meta&0xff, uns)
	case mysql.MYSQL_TYPE_BIT:
		typ = fmt.Sprintf("bit(%d)", (meta>>8)*8+meta&0xff)
	case mysql.MYSQL_TYPE_TIMESTAMP:
		typ = "timestamp"
	case mysql.MYSQL_TYPE_TIMESTAMP2:
		typ = fmt.Sprintf("timestamp(%d)", meta)
	case mysql.MYSQL_TYPE_DATETIME:
		typ = "datetime"
	case mysql.MYSQL_TYPE_DATETIME2:
		typ = fmt.Sprintf("datetime(%d)", meta)
	case mysql.MYSQL_TYPE_TIME:
		typ = "time"
	case mysql.MYSQL_TYPE_TIME2:
		typ = fmt.Sprintf("time(%d)", meta)
	case mysql.MYSQL_TYPE_DATE, mysql.MYSQL_TYPE_NEWDATE:
		typ = "date"
	case mysql.MYSQL_TYPE_YEAR:
		typ = "year"
	case mysql.MYSQL_TYPE_ENUM, mysql.MYSQL_TYPE_SET:
		elems := enums[i]
		typ = "enum"
		if tp == mysql.MYSQL_TYPE_SET {
			elems, typ = sets[i], "set"
		}
		quoted := make([]string, len(elems))
		for k, e := range elems {
			quoted[k] = "'" + strings.ReplaceAll(e, "'", "''") + "'"
		}
		typ += "(" + strings.Join(quoted, ",") + ")"
	case mysql.MYSQL_TYPE_VARCHAR, mysql.MYSQL_TYPE_VAR_STRING:
		typ = "varchar"
		if binary {
			typ = "varbinary"
		}
	case mysql.MYSQL_TYPE_STRING:
		typ = "char"
		if binary {
			typ = fmt.Sprintf("binary(%d)", stringLen(meta))
		}
	case mysql.MYSQL_TYPE_BLOB:
		// meta is the length prefix size: 1 tiny, 2 plain, 3 medium, 4 long.
		typ = [...]string{"text", "tinytext", "text", "mediumtext", "longtext"}[min(int(meta), 4)]
		if binary {
			typ = [...]string{"blob", "tinyblob", "blob", "mediumblob", "longblob"}[min(int(meta), 4)]
		}
	case mysql.MYSQL_TYPE_JSON:
		typ = "json"
	case mysql.MYSQL_TYPE_GEOMETRY:
		typ = "geometry"
	case mysql.MYSQL_TYPE_VECTOR:
		typ = "vector"
	}
	return cdc.ParseColumnType(name, typ)
}

// compatible reports whether the definition's column def can decode a value
// whose binlog type is syn. Facts the table map lacks (signedness, charset,
// labels without FULL metadata) are not compared.
func compatible(def, syn *cdc.Column, haveSign, haveColl, haveElems bool) bool {
	textual := func(k cdc.Kind) bool {
		return k == cdc.KindString || k == cdc.KindBytes || k == cdc.KindJSON
	}
	if textual(syn.Kind) {
		if !textual(def.Kind) {
			return false
		}
		if haveColl && (syn.Kind == cdc.KindBytes) != (def.Kind == cdc.KindBytes) {
			return false
		}
		return true
	}
	if def.Kind != syn.Kind {
		return false
	}
	switch syn.Kind {
	case cdc.KindInt:
		return def.IntBytes == syn.IntBytes && (!haveSign || def.Unsigned == syn.Unsigned)
	case cdc.KindDecimal, cdc.KindBit, cdc.KindTime:
		return def.Precision == syn.Precision
	case cdc.KindDateTime, cdc.KindTimestamp:
		return def.Precision == syn.Precision || syn.Type == "datetime" || syn.Type == "timestamp"
	case cdc.KindEnum, cdc.KindSet:
		return !haveElems || slices.Equal(def.Elems, syn.Elems)
	}
	return true
}
