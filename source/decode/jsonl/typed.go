package jsonl

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/source/decode"
	"github.com/rowsync/rowsync/source/decode/internal/canal"
)

// typeImages types ev's text images from the schema source's definition of
// the table, reading the definition again once if the row does not fit it
// (a column it lacks, a value that does not parse). The client prints
// values as canal's text (BLOBs as ISO-8859-1, TIMESTAMP in the canal
// JVM's zone, Options.TimeZone), so canal's conversion types them.
func (d *Decoder) typeImages(ev *cdc.Event, rows *cdc.BatchRows) (*cdc.TableDef, error) {
	for refresh := false; ; refresh = true {
		def, err := d.opts.Schemas.Table(context.Background(), ev.DB, ev.Table, refresh)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", decode.ErrSchemaUnavailable, err)
		}
		if def == nil {
			if !refresh {
				continue
			}
			return nil, errors.New("the schema source has no such table")
		}
		before, err := d.typeRow(def, ev.Before, rows)
		var after *cdc.Row
		if err == nil {
			after, err = d.typeRow(def, ev.After, rows)
		}
		if err == nil {
			ev.Before, ev.After, ev.Columns = before, after, def.Columns
			return def, nil
		}
		if refresh {
			return nil, err
		}
	}
}

// typeRow types a text image into a row from rows (not in place: the text
// is typed again after a refresh), of def's layout when it has one.
func (d *Decoder) typeRow(def *cdc.TableDef, text *cdc.Row, rows *cdc.BatchRows) (*cdc.Row, error) {
	if text == nil {
		return nil, nil
	}
	layout := def.Layout()
	var row *cdc.Row
	if layout != nil {
		row = rows.Of(layout)
	} else {
		row = rows.Get(text.Len())
	}
	for name, v := range text.All() {
		i, ok := def.Index(name)
		if !ok {
			return nil, fmt.Errorf("column %s: not in the table's definition", name)
		}
		col := &def.Columns[i]
		if s, ok := v.(string); ok { // else JSON null
			tv, err := typedText(col, s, d.loc)
			if err != nil {
				return nil, fmt.Errorf("column %s (%s): %w", name, col.Type, err)
			}
			v = tv
		}
		if layout != nil {
			row.SetAt(i, v)
		} else {
			row.Set(name, v)
		}
	}
	return row, nil
}

// typedText types one printed value. The client prints NULL as "", so ""
// in a column whose values are never "" (numbers, dates, JSON) is NULL;
// in a text column it stays "".
func typedText(col *cdc.Column, s string, loc *time.Location) (cdc.Value, error) {
	if s == "" {
		switch col.Kind {
		case cdc.KindString, cdc.KindEnum, cdc.KindSet, cdc.KindBytes, cdc.KindUnknown:
		default:
			return nil, nil
		}
	}
	v, err := canal.Value(col, canal.NoSQLType, s, loc)
	if err != nil {
		return nil, err
	}
	if b, ok := v.([]byte); ok {
		v = cdc.PadBinary(col, b)
	}
	return v, nil
}
