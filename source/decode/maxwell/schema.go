package maxwell

import (
	"strconv"
	"strings"
	"sync"

	"github.com/rowsync/rowsync/cdc"
)

// tableDef is Maxwell's table schema as DDL events carry it in `def` and
// `old` (MAXWELL ColumnDefSerializer: type, name, nullable, then charset for
// strings, signed for integers, enum-values for ENUM/SET, column-length for
// temporal types).
type tableDef struct {
	Database   string      `json:"database"`
	Table      string      `json:"table"`
	Columns    []columnDef `json:"columns"`
	PrimaryKey []string    `json:"primary-key"`
}

type columnDef struct {
	Type         string   `json:"type"`
	Name         string   `json:"name"`
	Signed       *bool    `json:"signed"`
	Charset      string   `json:"charset"`
	EnumValues   []string `json:"enum-values"`
	ColumnLength *int64   `json:"column-length"`
}

// newTable builds the cdc view of a Maxwell def. Column.Type is rebuilt as
// MySQL would spell it as far as the def tells: Maxwell keeps no display
// width, character length or DECIMAL precision/scale, so a DECIMAL column
// has Precision -1 (its scale is unknown; values keep Maxwell's digits).
// It is never modified after it is stored, so events may share Columns.
func newTable(def *tableDef) *cdc.TableDef {
	cols := make([]cdc.Column, 0, len(def.Columns))
	for _, cd := range def.Columns {
		cols = append(cols, columnFromDef(cd))
	}
	return cdc.NewTableDef(cols, def.PrimaryKey)
}

func columnFromDef(cd columnDef) cdc.Column {
	typ := strings.ToLower(cd.Type)
	switch typ {
	case "tinyint", "smallint", "mediumint", "int", "bigint":
		if cd.Signed != nil && !*cd.Signed {
			typ += " unsigned"
		}
	case "datetime", "timestamp", "time":
		if cd.ColumnLength != nil && *cd.ColumnLength > 0 {
			typ += "(" + strconv.FormatInt(*cd.ColumnLength, 10) + ")"
		}
	case "enum", "set":
		q := make([]string, len(cd.EnumValues))
		for i, v := range cd.EnumValues {
			q[i] = "'" + strings.ReplaceAll(v, "'", "''") + "'"
		}
		typ += "(" + strings.Join(q, ",") + ")"
	}
	c := cdc.ParseColumnType(cd.Name, typ)
	switch {
	case c.Kind == cdc.KindEnum || c.Kind == cdc.KindSet:
		c.Elems = cd.EnumValues // labels as Maxwell gives them, unescaped
	case c.Kind == cdc.KindDecimal:
		c.Precision = -1
	case c.Kind == cdc.KindString && strings.EqualFold(cd.Charset, "binary"):
		// VARCHAR ... CHARACTER SET binary: Maxwell writes base64
		c.Kind = cdc.KindBytes
	case c.Kind == cdc.KindBytes && !strings.Contains(typ, "blob") && !strings.Contains(typ, "binary"):
		// spatial types: Maxwell writes WKT text, not the WKB bytes
		c.Kind = cdc.KindString
	}
	return c
}

// schemas caches table definitions learnt from DDL events, keyed by
// "db.table". It is safe for concurrent use.
type schemas struct {
	m sync.Map // string -> *cdc.TableDef
}

func schemaKey(db, tbl string) string { return db + "\x00" + tbl }

func (s *schemas) get(db, tbl string) *cdc.TableDef {
	if v, ok := s.m.Load(schemaKey(db, tbl)); ok {
		return v.(*cdc.TableDef)
	}
	return nil
}

func (s *schemas) put(db, tbl string, t *cdc.TableDef) { s.m.Store(schemaKey(db, tbl), t) }

func (s *schemas) drop(db, tbl string) { s.m.Delete(schemaKey(db, tbl)) }

func (s *schemas) dropDB(db string) {
	prefix := db + "\x00"
	s.m.Range(func(k, _ any) bool {
		if strings.HasPrefix(k.(string), prefix) {
			s.m.Delete(k)
		}
		return true
	})
}
