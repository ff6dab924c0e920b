// Package maxwell decodes the JSON that Zendesk's Maxwell daemon publishes:
// one object per row change (insert, update, delete, bootstrap-insert), plus
// bootstrap markers and, with output_ddl, DDL events.
//
// Values are typed canonically (see cdc.Value). Maxwell's JSON alone does not
// say a column's type, so the decoder learns table schemas from the `def`
// of DDL events it sees (table-create, table-alter) and keeps them per
// decoder. With a known schema every value is exact: BLOB base64 becomes
// []byte, DATETIME text time.Time, TIME time.Duration, SET arrays cdc.Set,
// embedded JSON cdc.JSON. Without one (the usual case: DDL goes to its own
// topic and is off by default) values are typed from their JSON form:
// integers int64/uint64, other numbers cdc.Decimal with Maxwell's digits
// (lossless for DECIMAL; a DOUBLE keeps Jackson's text such as "1.0"),
// strings stay strings (dates, times, base64 BLOBs and ENUM labels alike),
// objects and arrays become compact cdc.JSON (a SET array too), booleans
// int64 0/1. Feeding the DDL topic through the same decoder gives the
// exact types.
package maxwell

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/source/decode"
	"github.com/rowsync/rowsync/source/decode/internal/jsonvalue"
)

// Decoder decodes Maxwell JSON. It is safe for concurrent use; the schema
// cache it keeps is shared by all callers.
type Decoder struct {
	opts    decode.Options
	schemas schemas
}

var _ decode.Decoder = (*Decoder)(nil)

// New returns a Maxwell decoder. opts.KeyColumns names the key of tables
// whose messages carry none (no primary_key_columns, no hash/array Kafka
// key, no learnt schema); opts.OnDDL receives DDL events.
func New(opts decode.Options) (decode.Decoder, error) {
	return &Decoder{opts: opts}, nil
}

// message is one Maxwell JSON object (RowMap.toJSON / DDLMap.toJSON).
type message struct {
	Database          string      `json:"database"`
	Table             string      `json:"table"`
	Type              string      `json:"type"`
	TS                json.Number `json:"ts"`
	Position          string      `json:"position"`
	SQL               string      `json:"sql"`
	PrimaryKeyColumns []string    `json:"primary_key_columns"`
	Data              object      `json:"data"`
	// Old is the changed columns' previous values for an update, and the
	// previous table def for table-alter.
	Old json.RawMessage `json:"old"`
	Def *tableDef       `json:"def"`
}

// object is a JSON object kept as its text (nil for null), so its members
// are read in order: a row's columns keep the order Maxwell wrote them in
// (the table's), which a map would lose.
type object []byte

// UnmarshalJSON keeps a copy of an object's text; anything but an object
// or null is an error, as it was for a map.
func (o *object) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		*o = nil
	case len(b) > 0 && b[0] == '{':
		*o = append((*o)[:0], b...)
	default:
		return fmt.Errorf("%.20s is not an object", b)
	}
	return nil
}

// Decode returns the row changes in msg.Value. The value is normally one
// JSON object; several concatenated objects (a file or stdout producer's
// lines) decode in order.
func (d *Decoder) Decode(msg decode.Message) ([]cdc.Event, error) {
	var m message
	if json.Unmarshal(msg.Value, &m) == nil {
		// the usual case: one object
		events, err := d.decodeOne(&m, &msg, nil)
		if err != nil {
			return nil, wrap(&m, err)
		}
		return events, nil
	}
	dec := json.NewDecoder(bytes.NewReader(msg.Value))
	var events []cdc.Event
	for n := 0; ; n++ {
		if err := d.opts.Limits.CheckRows(n + 1); err != nil { // objects, DDL included
			return nil, fmt.Errorf("maxwell: %w", err)
		}
		var m message
		err := dec.Decode(&m)
		if err == io.EOF {
			if n == 0 {
				return nil, errors.New("maxwell: empty message")
			}
			return events, nil
		}
		if err != nil {
			return nil, fmt.Errorf("maxwell: bad JSON: %w", err)
		}
		events, err = d.decodeOne(&m, &msg, events)
		if err != nil {
			return nil, wrap(&m, err)
		}
	}
}

func wrap(m *message, err error) error {
	if m.Database != "" || m.Table != "" {
		return fmt.Errorf("maxwell: %s.%s: %w", m.Database, m.Table, err)
	}
	return fmt.Errorf("maxwell: %w", err)
}

func (d *Decoder) decodeOne(m *message, msg *decode.Message, events []cdc.Event) ([]cdc.Event, error) {
	var op cdc.Op
	switch m.Type {
	case "insert", "bootstrap-insert":
		op = cdc.Insert
	case "update":
		op = cdc.Update
	case "delete":
		op = cdc.Delete
	case "bootstrap-start", "bootstrap-complete":
		return events, nil
	case "database-create", "database-alter", "database-drop", "table-create", "table-alter", "table-drop":
		return events, d.ddl(m, msg)
	case "":
		return nil, errors.New("missing type")
	default:
		return nil, fmt.Errorf("unknown type %q", m.Type)
	}
	if m.Database == "" || m.Table == "" {
		return nil, errors.New("missing database or table")
	}
	if m.Data == nil {
		return nil, fmt.Errorf("%s without data", m.Type)
	}
	tbl := d.schemas.get(m.Database, m.Table)
	ev := cdc.Event{DB: m.Database, Table: m.Table, Op: op}
	var err error
	if d.opts.Schemas == nil {
		err = d.images(&ev, m, tbl, false, msg.Rows)
	} else {
		learnt := tbl
		// the schema source's definition, read again once if the message
		// does not fit it
		for refresh := false; ; refresh = true {
			if tbl, err = d.opts.Schemas.Table(context.Background(), m.Database, m.Table, refresh); err != nil {
				return nil, fmt.Errorf("%w: %w", decode.ErrSchemaUnavailable, err)
			}
			if tbl == nil {
				if !refresh {
					continue
				}
				if learnt == nil {
					return nil, errors.New("the schema source has no such table")
				}
				// dropped since (a replay): the definition its DDL message taught
				tbl = learnt
				err = d.images(&ev, m, tbl, false, msg.Rows)
				break
			}
			if err = d.images(&ev, m, tbl, true, msg.Rows); err == nil || refresh {
				break
			}
		}
	}
	if err != nil {
		return nil, err
	}
	if tbl != nil {
		ev.Columns = tbl.Columns
	}
	if ev.Commit, err = commitTime(m.TS); err != nil {
		return nil, err
	}
	if ev.Pos, err = position(m, msg); err != nil {
		return nil, err
	}
	if ev.PK, err = d.primaryKey(m, msg.Key, tbl, ev.Image()); err != nil {
		return nil, err
	}
	return append(events, ev), nil
}

// images sets ev's row images from m's data and old, typed by tbl (nil:
// from the JSON form), in rows from rows. strict (tbl is the database's
// current definition) makes a column tbl lacks an error.
func (d *Decoder) images(ev *cdc.Event, m *message, tbl *cdc.TableDef, strict bool, rows *cdc.BatchRows) error {
	var layout *cdc.Layout
	if tbl != nil {
		layout = tbl.Layout()
	}
	row, err := convertRow(tbl, layout, m.Data, rows, strict)
	if err != nil {
		return err
	}
	ev.Before, ev.After = nil, nil
	switch ev.Op {
	case cdc.Insert:
		ev.After = row
	case cdc.Delete:
		ev.Before = row
	case cdc.Update:
		ev.After = row
		// before: the after image with old's values (the changed columns)
		before := rows.Clone(row)
		if len(m.Old) > 0 && string(m.Old) != "null" {
			old, err := convertRow(tbl, nil, m.Old, rows, strict)
			if err != nil {
				return fmt.Errorf("old: %w", err)
			}
			for k, v := range old.All() {
				before.Set(k, v)
			}
		}
		ev.Before = before
	}
	return nil
}

// convertRow types every member of the JSON object data into a row from
// rows: of layout, tbl's (members Maxwell writes in tbl's order are set by
// position, others by name, after tbl's columns), or without one in the
// members' order. A repeated member keeps its first place and its last
// value, the only one converted (as when data was a map).
func convertRow(tbl *cdc.TableDef, layout *cdc.Layout, data []byte, rows *cdc.BatchRows, strict bool) (*cdc.Row, error) {
	var row *cdc.Row
	if layout != nil {
		row = rows.Of(layout)
	} else {
		row = rows.Get(16)
	}
	names, j := layout.Names(), 0
	// the raw values first, so a repeated member is converted once
	if err := jsonvalue.EachMember(data, func(name, v []byte) error {
		if j < len(names) && names[j] == string(name) {
			row.SetAt(j, json.RawMessage(v))
		} else {
			row.Set(string(name), json.RawMessage(v))
		}
		j++
		return nil
	}); err != nil {
		return nil, err
	}
	for i := range row.Width() {
		name, raw, ok := row.At(i)
		if !ok {
			continue
		}
		var col *cdc.Column
		if i < len(names) {
			col = &tbl.Columns[i] // layout is tbl's
		} else {
			col = tbl.Column(name)
		}
		if col == nil && strict {
			return nil, fmt.Errorf("column %s: not in the table's definition", name)
		}
		v, err := convert(col, raw.(json.RawMessage))
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", name, err)
		}
		row.SetAt(i, v)
	}
	return row, nil
}

// ddl keeps the schema cache in step with Maxwell's DDL events and reports
// them to Options.OnDDL. A rename arrives as table-alter whose old def names
// the old table.
func (d *Decoder) ddl(m *message, msg *decode.Message) error {
	commit, err := commitTime(m.TS)
	if err != nil {
		return err
	}
	pos, err := position(m, msg)
	if err != nil {
		return err
	}
	dd := decode.DDL{DB: m.Database, Type: m.Type, SQL: m.SQL, Commit: commit, Pos: pos}
	if strings.HasPrefix(m.Type, "table-") {
		dd.Table = m.Table
	}
	decode.ReportDDL(d.opts, dd)
	switch m.Type {
	case "database-create", "database-alter":
		return nil
	case "database-drop":
		d.schemas.dropDB(m.Database)
		return nil
	case "table-drop":
		d.schemas.drop(m.Database, m.Table)
		return nil
	}
	if m.Def == nil {
		return fmt.Errorf("%s without def", m.Type)
	}
	db, tb := m.Def.Database, m.Def.Table
	if db == "" {
		db = m.Database
	}
	if tb == "" {
		tb = m.Table
	}
	if m.Type == "table-alter" && len(m.Old) > 0 && string(m.Old) != "null" {
		var old tableDef
		if err := json.Unmarshal(m.Old, &old); err == nil && old.Table != "" &&
			(old.Database != db || old.Table != tb) {
			d.schemas.drop(old.Database, old.Table)
		}
	}
	d.schemas.put(db, tb, newTable(m.Def))
	return nil
}

// commitTime reads `ts`: seconds on row events. A value above 10^11 is taken
// as milliseconds (DDL events and some forks write ms).
func commitTime(ts json.Number) (time.Time, error) {
	if ts == "" {
		return time.Time{}, nil
	}
	n, err := strconv.ParseInt(string(ts), 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("ts %q: not an integer", ts)
	}
	if n > 1e11 || n < -1e11 {
		return time.UnixMilli(n).UTC(), nil
	}
	return time.Unix(n, 0).UTC(), nil
}

// position reads `position` ("file:offset", output_binlog_position) into a
// binlog Version. All rows of one rows event share the offset. Without it
// Version stays 0 and Text is the transport location (msg.PosText).
func position(m *message, msg *decode.Message) (cdc.Position, error) {
	if m.Position != "" {
		i := strings.LastIndexByte(m.Position, ':')
		if i <= 0 {
			return cdc.Position{}, fmt.Errorf("position %q: not file:offset", m.Position)
		}
		off, err := strconv.ParseUint(m.Position[i+1:], 10, 64)
		if err != nil {
			return cdc.Position{}, fmt.Errorf("position %q: not file:offset", m.Position)
		}
		return cdc.Position{Version: cdc.BinlogPosVersion(m.Position[:i], off), Text: m.Position}, nil
	}
	return cdc.Position{Text: msg.PosText()}, nil
}

// primaryKey finds the key columns: primary_key_columns, else the Kafka key
// (hash or array kafka_key_format), else the learnt schema, else
// Options.KeyColumns; none leaves the PK empty (cdc.Event.PK). Every key
// column named must be in the row image and not NULL.
func (d *Decoder) primaryKey(m *message, key []byte, tbl *cdc.TableDef, image *cdc.Row) ([]string, error) {
	pk := m.PrimaryKeyColumns
	if len(pk) == 0 {
		pk = keyColumns(key, image)
	}
	if len(pk) == 0 && tbl != nil {
		pk = tbl.PK
	}
	if len(pk) == 0 && d.opts.KeyColumns != nil {
		pk = d.opts.KeyColumns(m.Database, m.Table)
	}
	for _, c := range pk {
		if v, ok := image.Lookup(c); !ok || v == nil {
			return nil, fmt.Errorf("primary key column %q missing or NULL", c)
		}
	}
	return pk, nil
}

// keyColumns reads the pk column names out of a Maxwell Kafka key:
// hash format {"database":…,"table":…,"pk.<col>":v,…} or array format
// ["db","table",[{"<col>":v},…]]. Maxwell lower-cases the names in the hash
// format, so they are matched to the row's columns ignoring case. A key it
// cannot read (none, "_uuid" for tables without a key, another format)
// gives nil.
func keyColumns(key []byte, image *cdc.Row) []string {
	key = bytes.TrimSpace(key)
	if len(key) == 0 {
		return nil
	}
	var names []string
	dec := json.NewDecoder(bytes.NewReader(key))
	dec.UseNumber()
	switch key[0] {
	case '{':
		obj, err := orderedKeys(dec)
		if err != nil {
			return nil
		}
		for _, k := range obj {
			if col, ok := strings.CutPrefix(k, "pk."); ok {
				names = append(names, col)
			}
		}
	case '[':
		var arr []json.RawMessage
		if err := dec.Decode(&arr); err != nil || len(arr) != 3 {
			return nil
		}
		var parts []json.RawMessage
		if err := json.Unmarshal(arr[2], &parts); err != nil {
			return nil
		}
		for _, p := range parts {
			obj, err := orderedKeys(json.NewDecoder(bytes.NewReader(p)))
			if err != nil {
				return nil
			}
			names = append(names, obj...)
		}
	}
	for i, n := range names {
		if _, ok := image.Lookup(n); ok {
			continue
		}
		for col := range image.All() {
			if strings.EqualFold(col, n) {
				names[i] = col
				break
			}
		}
	}
	return names
}

// orderedKeys returns the member names of the JSON object dec holds, in
// order.
func orderedKeys(dec *json.Decoder) ([]string, error) {
	t, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := t.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not an object")
	}
	var keys []string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k, _ := t.(string)
		keys = append(keys, k)
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, err
		}
	}
	return keys, nil
}
