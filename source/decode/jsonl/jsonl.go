// Package jsonl decodes the JSON lines of liukelin/canal_mysql_nosql_sync's
// canal client: one object per changed row,
//
//	{"binlog":"mysql-bin.000052:754","db":"shop","table":"user","eventType":"INSERT",
//	 "before":"","after":{"id":"9",…},"time":"2016-08-23 15:44:10"}
//
// pushed to RabbitMQ or a Redis list, and appended to a log file with CRLF.
// A message body may hold one line or several (CRLF or LF); each non-blank
// line is one row change.
//
// What the format cannot say, and how this decoder reads it:
//   - Values are text and carry no type. With Options.Schemas (a schema
//     source) each is typed from the table's definition the way canal's
//     text is (see typeImages): the values equal the binlog path's, and ""
//     in a column that cannot hold "" (a number, a date) is NULL. Without
//     one every value is a string and a SQL NULL prints as "" and is read
//     as "" (the two are indistinguishable); a sink writing Redis hashes
//     renders a string and the typed value the same.
//   - The key is not given: Options.KeyColumns names it, else the primary
//     key of the schema source's definition; a table with neither is an
//     error naming the table.
//   - DELETE carries the deleted row in "after" ("before" is ""); it
//     becomes Event.Before.
//   - "binlog" is the start offset of the rows event, shared by every row
//     of one statement; it gives Position.Version.
//   - "time" is the client's wall clock when it handled the batch, not the
//     commit time; it is read in Options.TimeZone (default UTC) and used as
//     Event.Commit for want of anything better.
package jsonl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/source/decode"
	"github.com/rowsync/rowsync/source/decode/internal/jsonvalue"
)

// Decoder decodes liukelin JSON lines. It is safe for concurrent use.
type Decoder struct {
	opts decode.Options
	loc  *time.Location
}

var _ decode.Decoder = (*Decoder)(nil)

// New returns a decoder. opts.KeyColumns must name the key columns of every
// table the stream carries; opts.TimeZone is the zone of the "time" field.
func New(opts decode.Options) (decode.Decoder, error) {
	return &Decoder{opts: opts, loc: opts.Location()}, nil
}

type line struct {
	Binlog    string          `json:"binlog"`
	DB        string          `json:"db"`
	Table     string          `json:"table"`
	EventType string          `json:"eventType"`
	Before    json.RawMessage `json:"before"`
	After     json.RawMessage `json:"after"`
	Time      string          `json:"time"`
}

// Decode returns one event per non-blank line of msg.Value.
func (d *Decoder) Decode(msg decode.Message) ([]cdc.Event, error) {
	var events []cdc.Event
	rest := msg.Value
	for n := 1; len(rest) > 0; n++ {
		var ln []byte
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			ln, rest = rest[:i], rest[i+1:]
		} else {
			ln, rest = rest, nil
		}
		ln = bytes.TrimSpace(ln) // also the \r of CRLF
		if len(ln) == 0 {
			continue
		}
		if err := d.opts.Limits.CheckRows(n); err != nil { // non-blank lines and blank ones
			return nil, fmt.Errorf("jsonl: %w", err)
		}
		ev, err := d.decodeLine(ln, &msg)
		if err != nil {
			return nil, fmt.Errorf("jsonl: line %d: %w", n, err)
		}
		events = append(events, ev)
	}
	if events == nil {
		return nil, errors.New("jsonl: empty message")
	}
	return events, nil
}

func (d *Decoder) decodeLine(b []byte, msg *decode.Message) (cdc.Event, error) {
	var l line
	if err := json.Unmarshal(b, &l); err != nil {
		return cdc.Event{}, fmt.Errorf("bad JSON: %w", err)
	}
	if l.DB == "" || l.Table == "" {
		return cdc.Event{}, errors.New("db or table missing")
	}
	ev, err := d.event(&l, msg)
	if err != nil {
		return cdc.Event{}, fmt.Errorf("%s.%s: %w", l.DB, l.Table, err)
	}
	return ev, nil
}

func (d *Decoder) event(l *line, msg *decode.Message) (cdc.Event, error) {
	ev := cdc.Event{DB: l.DB, Table: l.Table}
	before, err := row(l.Before, msg.Rows)
	if err != nil {
		return ev, fmt.Errorf("before: %w", err)
	}
	after, err := row(l.After, msg.Rows)
	if err != nil {
		return ev, fmt.Errorf("after: %w", err)
	}
	switch l.EventType {
	case "INSERT":
		ev.Op, ev.After = cdc.Insert, after
	case "UPDATE":
		ev.Op, ev.Before, ev.After = cdc.Update, before, after
	case "DELETE":
		// the client prints the deleted row into "after"
		ev.Op, ev.Before = cdc.Delete, after
		if before != nil {
			ev.Before = before
		}
	case "":
		return ev, errors.New("eventType missing")
	default:
		return ev, fmt.Errorf("unknown eventType %q", l.EventType)
	}
	if ev.Image() == nil {
		return ev, fmt.Errorf("%s without a row", l.EventType)
	}
	if ev.Op == cdc.Update && ev.Before == nil {
		return ev, errors.New("UPDATE without before")
	}
	if ev.Op != cdc.Delete && ev.After == nil {
		return ev, fmt.Errorf("%s without after", l.EventType)
	}
	if l.Time != "" {
		t, err := time.ParseInLocation(time.DateTime, l.Time, d.loc)
		if err != nil {
			return ev, fmt.Errorf("time %q: not yyyy-MM-dd HH:mm:ss", l.Time)
		}
		ev.Commit = t.UTC()
	}
	if ev.Pos, err = position(l.Binlog, msg); err != nil {
		return ev, err
	}
	var def *cdc.TableDef
	if d.opts.Schemas != nil {
		if def, err = d.typeImages(&ev, msg.Rows); err != nil {
			return ev, err
		}
	}
	if d.opts.KeyColumns != nil {
		ev.PK = d.opts.KeyColumns(l.DB, l.Table)
	}
	if len(ev.PK) == 0 && def != nil {
		ev.PK = def.PK
	}
	if len(ev.PK) == 0 {
		return ev, errors.New("no key columns configured for this table (the format carries no key)")
	}
	img := ev.Image()
	for _, c := range ev.PK {
		if _, ok := img.Lookup(c); !ok {
			return ev, fmt.Errorf("key column %q not in the row", c)
		}
	}
	return ev, nil
}

// position reads "file:offset".
func position(s string, msg *decode.Message) (cdc.Position, error) {
	if s == "" {
		return cdc.Position{Text: msg.PosText()}, nil
	}
	i := strings.LastIndexByte(s, ':')
	if i <= 0 {
		return cdc.Position{}, fmt.Errorf("binlog %q: not file:offset", s)
	}
	off, err := strconv.ParseUint(s[i+1:], 10, 64)
	if err != nil {
		return cdc.Position{}, fmt.Errorf("binlog %q: not file:offset", s)
	}
	return cdc.Position{Version: cdc.BinlogPosVersion(s[:i], off), Text: s}, nil
}

// row reads a row object into a row from rows, its members in order; ""
// (and null) mean no row. A repeated member keeps its first place and its
// last value, the only one read (as when rows were maps).
func row(raw json.RawMessage, rows *cdc.BatchRows) (*cdc.Row, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == `""` || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] != '{' {
		return nil, fmt.Errorf("%.40s is neither an object nor \"\"", raw)
	}
	r := rows.Get(16)
	// the raw values first, so a repeated member is read once
	if err := jsonvalue.EachMember(raw, func(name, v []byte) error {
		r.Set(string(name), json.RawMessage(v))
		return nil
	}); err != nil {
		return nil, err
	}
	for i := range r.Width() {
		name, v, ok := r.At(i)
		if !ok {
			continue
		}
		s, err := text(v.(json.RawMessage))
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", name, err)
		}
		r.SetAt(i, s)
	}
	return r, nil
}

// text returns a value as the string the client printed. The client only
// writes strings; a number or boolean (another producer) keeps its JSON
// text, null stays nil.
func text(raw json.RawMessage) (cdc.Value, error) {
	switch raw[0] {
	case '"':
		if s := raw[1 : len(raw)-1]; bytes.IndexByte(s, '\\') < 0 && utf8.Valid(s) {
			return string(s), nil // nothing to unescape
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		return s, nil
	case 'n':
		return nil, nil
	case '{', '[':
		return nil, fmt.Errorf("%.40s is not a text value", raw)
	}
	return string(raw), nil
}
