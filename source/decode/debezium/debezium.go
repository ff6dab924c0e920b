// Package debezium decodes the JSON that Debezium's MySQL connector writes
// to Kafka through the JsonConverter: one record per row, the value an
// envelope {before, after, source, op, ts_ms}, with schemas.enable=true
// wrapped as {"schema":…, "payload":…}. Both forms are detected by the
// presence of "schema" and "payload".
//
// With a schema, values are typed exactly from the Connect types and
// Debezium's semantic names: io.debezium.time.Date (days) → time.Time,
// Timestamp (ms), MicroTimestamp (µs) and NanoTimestamp → time.Time
// (DATETIME wall clock as UTC), ZonedTimestamp (ISO-8601) → time.Time UTC,
// Time/MicroTime/NanoTime → time.Duration, Connect Decimal (base64 unscaled
// integer + the "scale" parameter) → cdc.Decimal with exactly scale digits,
// io.debezium.data.Json → cdc.JSON (compact), Enum → string, EnumSet →
// cdc.Set, Bits (little-endian bytes) → int64, bytes → []byte, boolean →
// int64 0/1, float32 → float64 rounded to float32 as FLOAT, geometry → the
// WKB []byte. BIGINT UNSIGNED is exact when the connector propagates source
// types (column.propagate.source.type) or uses bigint.unsigned.handling.mode
// =precise; in the default "long" mode values above 2^63-1 arrive negative
// and stay so unless the source type says UNSIGNED.
//
// Without a schema, Options.Schemas (a schema source: the table's
// definition from information_schema) types every value exactly, given the
// connector's modes in Options.Debezium (see typed). Without either, the
// JSON form alone decides (see untyped): DATE arrives as an integer day
// count, DATETIME as an integer of ms or µs, TIME as µs, DECIMAL (precise
// mode) and BLOB as base64 text, SET as comma text, JSON as text — all
// indistinguishable from INT and VARCHAR columns, so they stay int64 and
// string.
//
// The Kafka key (with or without schema) names the primary-key columns in
// key order; without one, Options.KeyColumns applies.
package debezium

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/source/decode"
	"github.com/rowsync/rowsync/source/decode/internal/jsonvalue"
)

// Decoder decodes Debezium change events. It is safe for concurrent use.
type Decoder struct {
	opts    decode.Options
	schemas schemaCache
	// last is the start of the last message with a known schema, as the
	// JsonConverter writes it: {"schema":<schema>,"payload": — a message
	// of the same table version starts with these very bytes, and one
	// comparison finds its schema without scanning it.
	last atomic.Pointer[lastSchema]
	// width is the columns of the last row typed by its JSON form alone
	// (no schema): the room the next one is made with
	width atomic.Int32
}

type lastSchema struct {
	prefix []byte
	rs     *rowSchema
}

var (
	schemaStart  = []byte(`{"schema":`)
	payloadStart = []byte(`,"payload":`)
)

// lastPayload returns the payload of raw if raw starts with the last
// schema's bytes and is exactly {"schema":<schema>,"payload":<payload>}.
func (d *Decoder) lastPayload(raw []byte) ([]byte, *rowSchema, bool) {
	ls := d.last.Load()
	if ls == nil || !bytes.HasPrefix(raw, ls.prefix) || raw[len(raw)-1] != '}' {
		return nil, nil, false
	}
	payload := raw[len(ls.prefix) : len(raw)-1]
	if !json.Valid(payload) {
		return nil, nil, false // something else follows the payload: the general path decides
	}
	return bytes.TrimSpace(payload), ls.rs, true
}

// remember makes schema (of rs) the last schema if raw starts as the
// JsonConverter writes it.
func (d *Decoder) remember(raw, schema []byte, rs *rowSchema) {
	n := len(schemaStart) + len(schema) + len(payloadStart)
	if len(raw) < n || !bytes.HasPrefix(raw, schemaStart) || !bytes.Equal(raw[len(schemaStart):len(schemaStart)+len(schema)], schema) ||
		!bytes.Equal(raw[n-len(payloadStart):n], payloadStart) {
		return
	}
	if ls := d.last.Load(); ls != nil && bytes.Equal(ls.prefix, raw[:n]) {
		return
	}
	d.last.Store(&lastSchema{prefix: bytes.Clone(raw[:n]), rs: rs})
}

var _ decode.Decoder = (*Decoder)(nil)

// New returns a Debezium decoder. opts.KeyColumns names the key of tables
// whose records have no usable Kafka key; opts.OnDDL receives the records
// of the schema change topic.
func New(opts decode.Options) (decode.Decoder, error) {
	if err := opts.Debezium.Validate(); err != nil {
		return nil, err
	}
	return &Decoder{opts: opts}, nil
}

// value is a record value: the envelope fields at the top (schemaless), or
// schema and payload.
type value struct {
	Schema  json.RawMessage `json:"schema"`
	Payload json.RawMessage `json:"payload"`
	payload
}

type payload struct {
	Before json.RawMessage `json:"before"`
	After  json.RawMessage `json:"after"`
	Source *source         `json:"source"`
	Op     *string         `json:"op"`
	// schema change topic
	DDL          *string                 `json:"ddl"`
	DatabaseName string                  `json:"databaseName"`
	TableChanges []struct{ Type string } `json:"tableChanges"`
}

type source struct {
	DB    string      `json:"db"`
	Table string      `json:"table"`
	File  string      `json:"file"`
	Pos   json.Number `json:"pos"`
	Row   json.Number `json:"row"`
	TsMs  json.Number `json:"ts_ms"`
}

// read fills s from the validated JSON object b as json.Unmarshal would:
// strings from JSON strings, numbers from number literals (or strings
// holding one), null leaving a member empty, anything else an error.
func (s *source) read(b []byte) error {
	if len(b) == 0 || b[0] != '{' {
		return fmt.Errorf("%.20s is not an object", b)
	}
	str := func(raw []byte, dst *string) error {
		if string(raw) == "null" {
			return nil
		}
		if raw[0] != '"' {
			return fmt.Errorf("%.20s is not a string", raw)
		}
		v, err := jsonvalue.String(raw)
		*dst = v
		return err
	}
	num := func(raw []byte, dst *json.Number) error {
		var t string
		if raw[0] == '"' {
			if err := str(raw, &t); err != nil {
				return err
			}
		} else if string(raw) != "null" {
			t = string(raw)
		}
		if t != "" && !jsonvalue.IsNumber([]byte(t)) {
			return fmt.Errorf("%.20s is not a number", raw)
		}
		*dst = json.Number(t)
		return nil
	}
	return jsonvalue.EachMember(b, func(name, m []byte) error {
		var err error
		switch n := string(name); {
		case strings.EqualFold(n, "db"):
			err = str(m, &s.DB)
		case strings.EqualFold(n, "table"):
			err = str(m, &s.Table)
		case strings.EqualFold(n, "file"):
			err = str(m, &s.File)
		case strings.EqualFold(n, "pos"):
			err = num(m, &s.Pos)
		case strings.EqualFold(n, "row"):
			err = num(m, &s.Row)
		case strings.EqualFold(n, "ts_ms"):
			err = num(m, &s.TsMs)
		}
		if err != nil {
			return fmt.Errorf("source.%s: %w", name, err)
		}
		return nil
	})
}

// read fills v from the JSON object b, already validated, as json.Unmarshal
// would (member names matched case-insensitively, the last of a repeated
// member wins, unknown members ignored) but without copying before and
// after: they stay slices of b. top also reads schema and payload.
func (v *value) read(b []byte, top bool) error {
	if len(b) > 0 && b[0] != '{' {
		return fmt.Errorf("%.20s is not an object", b)
	}
	str := func(raw []byte, dst **string) error {
		if string(raw) == "null" {
			*dst = nil
			return nil
		}
		*dst = new(string)
		return json.Unmarshal(raw, *dst)
	}
	raw := func(raw []byte) json.RawMessage { return raw }
	return jsonvalue.EachMember(b, func(name, m []byte) error {
		var err error
		switch n := string(name); {
		case strings.EqualFold(n, "before"):
			v.Before = raw(m)
		case strings.EqualFold(n, "after"):
			v.After = raw(m)
		case strings.EqualFold(n, "op"):
			err = str(m, &v.Op)
		case strings.EqualFold(n, "source"):
			if string(m) == "null" {
				v.Source = nil
			} else {
				v.Source = new(source)
				err = v.Source.read(m)
			}
		case strings.EqualFold(n, "ddl"):
			err = str(m, &v.DDL)
		case strings.EqualFold(n, "databaseName"):
			if string(m) != "null" {
				err = json.Unmarshal(m, &v.DatabaseName)
			}
		case strings.EqualFold(n, "tableChanges"):
			err = json.Unmarshal(m, &v.TableChanges)
		case top && strings.EqualFold(n, "schema"):
			v.Schema = raw(m)
		case top && strings.EqualFold(n, "payload"):
			v.Payload = raw(m)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	})
}

// Decode returns the row change of one record. A tombstone (null or empty
// value), a truncate (op "t": reported as a TRUNCATE DDL, see
// decode.ReportDDL; rowsync does not clear the table's rows in the
// sinks), a logical message (op "m"), a schema change, heartbeat or
// transaction metadata record gives no events and a nil error. A primary
// key change arrives as a "d" record and a "c" record; each decodes alone.
func (d *Decoder) Decode(msg decode.Message) ([]cdc.Event, error) {
	raw := bytes.TrimSpace(msg.Value)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil // tombstone
	}
	var p *payload
	var schemaRaw []byte
	payloadRaw, rs, known := d.lastPayload(raw) // known: the last schema's bytes, payload validated
	enveloped := known
	if !known {
		schemaRaw, payloadRaw, enveloped = splitEnvelope(raw)
		switch {
		case !enveloped:
			// any other layout: the envelope's fields at the top, or
			// schema and payload among other members
			if !json.Valid(raw) {
				return nil, fmt.Errorf("debezium: bad JSON: %w", json.Unmarshal(raw, new(any)))
			}
			var v value
			if err := v.read(raw, true); err != nil {
				return nil, fmt.Errorf("debezium: bad JSON: %w", err)
			}
			p = &v.payload
			schemaRaw, payloadRaw = v.Schema, v.Payload
			enveloped = v.Schema != nil && v.Payload != nil
		case !json.Valid(payloadRaw):
			return nil, fmt.Errorf("debezium: payload: %w", json.Unmarshal(payloadRaw, new(any)))
		}
	}
	if enveloped {
		if string(payloadRaw) == "null" {
			return nil, nil // tombstone with schema
		}
		var v value
		if err := v.read(payloadRaw, false); err != nil {
			return nil, fmt.Errorf("debezium: payload: %w", err)
		}
		p = &v.payload
		if !known && string(schemaRaw) != "null" {
			var err error
			if rs, err = d.schemas.get(schemaRaw); err != nil {
				return nil, fmt.Errorf("debezium: %w", err)
			}
			d.remember(raw, schemaRaw, rs)
		}
	}
	if p.Op == nil {
		if p.Before != nil || p.After != nil {
			return nil, errors.New("debezium: change event without op")
		}
		if p.DDL != nil {
			return nil, d.ddl(p, &msg)
		}
		return nil, nil // heartbeat, transaction metadata
	}
	var op cdc.Op
	switch *p.Op {
	case "c", "r":
		op = cdc.Insert
	case "u":
		op = cdc.Update
	case "d":
		op = cdc.Delete
	case "t":
		return nil, d.truncate(p, &msg)
	case "m":
		return nil, nil
	default:
		return nil, fmt.Errorf("debezium: unknown op %q", *p.Op)
	}
	if p.Source == nil || p.Source.DB == "" || p.Source.Table == "" {
		return nil, errors.New("debezium: source.db or source.table missing")
	}
	ev, err := d.event(op, p, rs, &msg)
	if err != nil {
		return nil, fmt.Errorf("debezium: %s.%s: %w", p.Source.DB, p.Source.Table, err)
	}
	return []cdc.Event{ev}, nil
}

func (d *Decoder) event(op cdc.Op, p *payload, rs *rowSchema, msg *decode.Message) (cdc.Event, error) {
	ev := cdc.Event{DB: p.Source.DB, Table: p.Source.Table, Op: op}
	if rs != nil {
		ev.Columns = rs.cols
	}
	var err error
	var typedDef *cdc.TableDef // the schema source's definition, for a schemaless message
	if rs == nil && d.opts.Schemas != nil {
		var before, after json.RawMessage
		if op != cdc.Insert {
			before = p.Before
		}
		if op != cdc.Delete {
			after = p.After
		}
		if ev.Before, ev.After, typedDef, err = d.typedImages(ev.DB, ev.Table, before, after, msg.Rows); err != nil {
			return ev, err
		}
		ev.Columns = typedDef.Columns
	} else {
		if op != cdc.Insert {
			if ev.Before, err = d.convertRow(rs, p.Before, msg.Rows); err != nil {
				return ev, fmt.Errorf("before: %w", err)
			}
		}
		if op != cdc.Delete {
			if ev.After, err = d.convertRow(rs, p.After, msg.Rows); err != nil {
				return ev, fmt.Errorf("after: %w", err)
			}
		}
	}
	if op == cdc.Delete && ev.Before == nil {
		return ev, errors.New("delete without before")
	}
	if op != cdc.Delete && ev.After == nil {
		return ev, fmt.Errorf("%s without after", op)
	}
	if ev.Commit, ev.Pos, err = where(p.Source, msg); err != nil {
		return ev, err
	}
	if ev.PK, err = d.primaryKey(msg.Key, ev.DB, ev.Table, ev.Image()); err != nil {
		return ev, err
	}
	if len(ev.PK) == 0 && typedDef != nil {
		ev.PK = typedDef.PK // no Kafka key, no configured pk: the table's primary key
	}
	return ev, nil
}

// convertRow types a before/after object by the message's schema (rs nil:
// by the JSON form); JSON null gives a nil Row.
func (d *Decoder) convertRow(rs *rowSchema, raw json.RawMessage, rows *cdc.BatchRows) (*cdc.Row, error) {
	n := max(8, int(d.width.Load()))
	var layout *cdc.Layout
	if rs != nil {
		n, layout = len(rs.cols), rs.layout
	}
	row, err := imageRow(raw, rows, layout, n, func(name, r []byte) (string, cdc.Value, error) {
		f := rs.field(name)
		key := ""
		if f != nil {
			key = f.Field
		} else {
			key = string(name)
		}
		v, err := convert(f, r)
		if err != nil {
			return "", nil, fmt.Errorf("column %s: %w", key, err)
		}
		return key, v, nil
	})
	if rs == nil && row != nil {
		d.width.Store(int32(min(row.Width(), decode.MaxColumns)))
	}
	return row, err
}

// where reads source.ts_ms (binlog event time, 1 s resolution; 0 in old
// snapshot records → unknown) and source.file/pos/row. Every row of one
// binlog rows event shares file:pos, hence the Version.
func where(s *source, msg *decode.Message) (time.Time, cdc.Position, error) {
	var commit time.Time
	if s.TsMs != "" {
		ms, err := strconv.ParseInt(string(s.TsMs), 10, 64)
		if err != nil {
			return commit, cdc.Position{}, fmt.Errorf("source.ts_ms %q: not an integer", s.TsMs)
		}
		if ms > 0 {
			commit = time.UnixMilli(ms).UTC()
		}
	}
	if s.File == "" || s.Pos == "" {
		return commit, cdc.Position{Text: msg.PosText()}, nil
	}
	pos, err := strconv.ParseUint(string(s.Pos), 10, 64)
	if err != nil {
		return commit, cdc.Position{}, fmt.Errorf("source.pos %q: not an offset", s.Pos)
	}
	text := s.File + ":" + string(s.Pos)
	if s.Row != "" && s.Row != "0" {
		text += " row " + string(s.Row)
	}
	return commit, cdc.Position{Version: cdc.BinlogPosVersion(s.File, pos), Text: text}, nil
}

// truncate reports a truncate record as a TRUNCATE statement.
func (d *Decoder) truncate(p *payload, msg *decode.Message) error {
	if p.Source == nil || p.Source.DB == "" || p.Source.Table == "" {
		return errors.New("debezium: truncate: source.db or source.table missing")
	}
	dd := decode.DDL{DB: p.Source.DB, Table: p.Source.Table, Type: "TRUNCATE"}
	var err error
	if dd.Commit, dd.Pos, err = where(p.Source, msg); err != nil {
		return fmt.Errorf("debezium: truncate: %w", err)
	}
	decode.ReportDDL(d.opts, dd)
	return nil
}

// ddl reports a schema change topic record to Options.OnDDL.
func (d *Decoder) ddl(p *payload, msg *decode.Message) error {
	dd := decode.DDL{DB: p.DatabaseName, SQL: *p.DDL, Pos: cdc.Position{Text: msg.PosText()}}
	if len(p.TableChanges) > 0 {
		dd.Type = p.TableChanges[0].Type
	}
	if p.Source != nil {
		if dd.DB == "" {
			dd.DB = p.Source.DB
		}
		dd.Table = p.Source.Table // a multi-table statement lists them all
		var err error
		if dd.Commit, dd.Pos, err = where(p.Source, msg); err != nil {
			return fmt.Errorf("debezium: schema change: %w", err)
		}
	}
	decode.ReportDDL(d.opts, dd)
	return nil
}

// primaryKey takes the key columns from the record key, else from
// Options.KeyColumns; none leaves the PK empty. Every key column named must
// be in the row image and not NULL.
func (d *Decoder) primaryKey(key []byte, db, table string, image *cdc.Row) ([]string, error) {
	pk := keyColumns(key)
	if len(pk) == 0 && d.opts.KeyColumns != nil {
		pk = d.opts.KeyColumns(db, table)
	}
	for _, c := range pk {
		if v, ok := image.Lookup(c); !ok || v == nil {
			return nil, fmt.Errorf("primary key column %q missing or NULL", c)
		}
	}
	return pk, nil
}

// keyColumns returns the field names of a record key, {"id":1} or
// {"schema":…,"payload":{"id":1}}, in key order. A key that is absent,
// null or not such an object (a StringConverter key, say) gives nil.
func keyColumns(key []byte) []string {
	key = bytes.TrimSpace(key)
	if len(key) == 0 || key[0] != '{' {
		return nil
	}
	names, vals, err := members(key)
	if err != nil {
		return nil
	}
	if len(names) == 2 && (names[0] == "schema" && names[1] == "payload" || names[0] == "payload" && names[1] == "schema") {
		p := vals[0]
		if names[0] == "schema" {
			p = vals[1]
		}
		if names, _, err = members(p); err != nil {
			return nil
		}
	}
	return names
}

// members returns the member names and values of a JSON object, in order.
func members(obj []byte) ([]string, []json.RawMessage, error) {
	if !json.Valid(obj) {
		return nil, nil, errors.New("not JSON")
	}
	var names []string
	var vals []json.RawMessage
	err := jsonvalue.EachMember(obj, func(name, v []byte) error {
		names, vals = append(names, string(name)), append(vals, v)
		return nil
	})
	return names, vals, err
}
