package debezium

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/source/decode/internal/jsonvalue"
)

// field is a Kafka Connect schema as the JsonConverter writes it with
// schemas.enable=true.
type field struct {
	Type       string            `json:"type"`
	Name       string            `json:"name"`
	Field      string            `json:"field"`
	Parameters map[string]string `json:"parameters"`
	Fields     []field           `json:"fields"`
}

// rowSchema is the typed view of the envelope's before/after struct.
type rowSchema struct {
	fields map[string]*field
	cols   []cdc.Column // shared by events, never modified
	// layout is the fields' names as the layout of the rows typed by the
	// schema (see imageRow); nil when a name repeats.
	layout *cdc.Layout
}

func (r *rowSchema) field(name []byte) *field {
	if r == nil {
		return nil
	}
	return r.fields[string(name)]
}

// schemaCache maps the raw text of an envelope schema to its parsed form:
// every message of a table version carries the same schema bytes, so it is
// parsed (and validated) once; later messages only find their bytes in the
// map. It is bounded; past maxSchemas new schemas are parsed on every use
// instead of stored.
type schemaCache struct {
	mu sync.RWMutex
	m  map[string]*rowSchema
}

const maxSchemas = 4096

func (c *schemaCache) get(raw []byte) (*rowSchema, error) {
	c.mu.RLock()
	rs, ok := c.m[string(raw)] // no copy: the compiler looks up by the bytes
	c.mu.RUnlock()
	if ok {
		return rs, nil
	}
	rs, err := parseSchema(raw)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]*rowSchema{}
	}
	if len(c.m) < maxSchemas {
		c.m[string(raw)] = rs
	}
	c.mu.Unlock()
	return rs, nil
}

// splitEnvelope finds the two values of {"schema":…,"payload":…} (either
// order, nothing else at the top) without parsing them, so a known schema
// costs one scan for its end instead of a parse. The schema's bytes are
// only trusted when equal to a schema parseSchema has validated; the
// payload is parsed in full. Any other layout gives ok false (the caller
// parses the whole message).
func splitEnvelope(b []byte) (schema, payload []byte, ok bool) {
	i := jsonvalue.SkipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, nil, false
	}
	for n := 0; n < 2; n++ {
		i = jsonvalue.SkipSpace(b, i+1)
		var key string
		switch {
		case bytes.HasPrefix(b[i:], []byte(`"schema"`)):
			key, i = "schema", i+len(`"schema"`)
		case bytes.HasPrefix(b[i:], []byte(`"payload"`)):
			key, i = "payload", i+len(`"payload"`)
		default:
			return nil, nil, false
		}
		i = jsonvalue.SkipSpace(b, i)
		if i >= len(b) || b[i] != ':' {
			return nil, nil, false
		}
		start := jsonvalue.SkipSpace(b, i+1)
		end, ok := jsonvalue.SkipValue(b, start)
		if !ok {
			return nil, nil, false
		}
		if key == "schema" {
			if schema != nil {
				return nil, nil, false
			}
			schema = b[start:end]
		} else {
			if payload != nil {
				return nil, nil, false
			}
			payload = b[start:end]
		}
		i = jsonvalue.SkipSpace(b, end)
		if i >= len(b) {
			return nil, nil, false
		}
		if n == 0 && b[i] != ',' || n == 1 && b[i] != '}' {
			return nil, nil, false
		}
	}
	if jsonvalue.SkipSpace(b, i+1) != len(b) || schema == nil || payload == nil {
		return nil, nil, false
	}
	return schema, payload, true
}

// parseSchema finds the row struct (the "after" field, else "before") of
// an envelope schema.
func parseSchema(raw json.RawMessage) (*rowSchema, error) {
	var env field
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	var row *field
	for i := range env.Fields {
		f := &env.Fields[i]
		if f.Field == "after" || (f.Field == "before" && row == nil) {
			row = f
		}
	}
	if row == nil {
		// not a change envelope (schema change topic, heartbeat)
		return nil, nil
	}
	rs := &rowSchema{fields: make(map[string]*field, len(row.Fields))}
	for i := range row.Fields {
		f := &row.Fields[i]
		if f.Field == "" {
			return nil, fmt.Errorf("schema: row field %d has no name", i)
		}
		if err := checkType(f); err != nil {
			return nil, fmt.Errorf("schema: column %s: %w", f.Field, err)
		}
		rs.fields[f.Field] = f
		rs.cols = append(rs.cols, column(f))
	}
	names := make([]string, len(rs.cols))
	for i := range rs.cols {
		names[i] = row.Fields[i].Field
	}
	rs.layout, _ = cdc.NewLayout(names)
	return rs, nil
}

// checkType rejects schema types Kafka Connect does not define.
func checkType(f *field) error {
	switch f.Type {
	case "int8", "int16", "int32", "int64", "float", "double", "float32", "float64", "boolean", "string",
		"bytes", "array", "map", "struct":
		return nil
	}
	return fmt.Errorf("unknown schema type %q", f.Type)
}

// Debezium's semantic type names (io.debezium.time.*, io.debezium.data.*)
// and Kafka Connect's logical types.
const (
	nameDecimal      = "org.apache.kafka.connect.data.Decimal"
	nameVarDecimal   = "io.debezium.data.VariableScaleDecimal"
	nameDate         = "io.debezium.time.Date"
	nameConnectDate  = "org.apache.kafka.connect.data.Date"
	nameTimestamp    = "io.debezium.time.Timestamp"
	nameConnectTS    = "org.apache.kafka.connect.data.Timestamp"
	nameMicroTS      = "io.debezium.time.MicroTimestamp"
	nameNanoTS       = "io.debezium.time.NanoTimestamp"
	nameZonedTS      = "io.debezium.time.ZonedTimestamp"
	nameTime         = "io.debezium.time.Time"
	nameConnectTime  = "org.apache.kafka.connect.data.Time"
	nameMicroTime    = "io.debezium.time.MicroTime"
	nameNanoTime     = "io.debezium.time.NanoTime"
	nameYear         = "io.debezium.time.Year"
	nameJSON         = "io.debezium.data.Json"
	nameEnum         = "io.debezium.data.Enum"
	nameEnumSet      = "io.debezium.data.EnumSet"
	nameBits         = "io.debezium.data.Bits"
	nameGeometry     = "io.debezium.data.geometry.Geometry"
	namePoint        = "io.debezium.data.geometry.Point"
	nameGeography    = "io.debezium.data.geometry.Geography"
	paramScale       = "scale"
	paramSourceType  = "__debezium.source.column.type"
	paramSourceLen   = "__debezium.source.column.length"
	paramSourceScale = "__debezium.source.column.scale"
)

// column describes a field as a cdc.Column. With column.propagate.source.type
// the MySQL type is exact; otherwise it is inferred from the Connect type,
// and precisions the schema does not give are -1.
func column(f *field) cdc.Column {
	if st := f.Parameters[paramSourceType]; st != "" {
		typ := strings.ToLower(st)
		base, unsigned := strings.CutSuffix(typ, " unsigned")
		if l := f.Parameters[paramSourceLen]; l != "" && !strings.Contains(base, "(") {
			switch base {
			case "enum", "set":
				// labels come from the "allowed" parameter
			case "datetime", "timestamp", "time":
				// the length is the fractional digits only when it is one
				if n, err := strconv.Atoi(l); err == nil && n <= 6 {
					base += "(" + l + ")"
				}
			default:
				if s := f.Parameters[paramSourceScale]; s != "" {
					base += "(" + l + "," + s + ")"
				} else {
					base += "(" + l + ")"
				}
			}
		}
		if unsigned {
			base += " unsigned"
		}
		c := cdc.ParseColumnType(f.Field, base)
		if c.Kind == cdc.KindEnum || c.Kind == cdc.KindSet {
			c.Elems = allowed(f)
		}
		if c.Kind != cdc.KindUnknown {
			return c
		}
	}
	c := cdc.Column{Name: f.Field, Precision: -1}
	switch f.Name {
	case nameDecimal:
		c.Kind = cdc.KindDecimal
		if s, err := strconv.Atoi(f.Parameters[paramScale]); err == nil {
			c.Precision = s
		}
		return c
	case nameVarDecimal:
		c.Kind = cdc.KindDecimal
		return c
	case nameDate, nameConnectDate:
		c.Kind = cdc.KindDate
		return c
	case nameTimestamp, nameConnectTS, nameMicroTS, nameNanoTS:
		c.Kind = cdc.KindDateTime
		return c
	case nameZonedTS:
		c.Kind = cdc.KindTimestamp
		return c
	case nameTime, nameConnectTime, nameMicroTime, nameNanoTime:
		c.Kind = cdc.KindTime
		return c
	case nameYear:
		c.Kind = cdc.KindYear
		return c
	case nameJSON:
		c.Kind = cdc.KindJSON
		return c
	case nameEnum:
		c.Kind, c.Elems = cdc.KindEnum, allowed(f)
		return c
	case nameEnumSet:
		c.Kind, c.Elems = cdc.KindSet, allowed(f)
		return c
	case nameBits:
		c.Kind = cdc.KindBit
		if n, err := strconv.Atoi(f.Parameters["length"]); err == nil {
			c.Precision = n
		}
		return c
	case nameGeometry, namePoint, nameGeography:
		c.Kind = cdc.KindBytes
		return c
	}
	switch f.Type {
	case "int8":
		c.Kind, c.IntBytes = cdc.KindInt, 1
	case "int16":
		c.Kind, c.IntBytes = cdc.KindInt, 2
	case "int32":
		c.Kind, c.IntBytes = cdc.KindInt, 4
	case "int64":
		c.Kind, c.IntBytes = cdc.KindInt, 8
	case "boolean":
		c.Kind, c.IntBytes = cdc.KindInt, 1
	case "float", "float32":
		c.Kind = cdc.KindFloat
	case "double", "float64":
		c.Kind = cdc.KindDouble
	case "string":
		c.Kind = cdc.KindString
	case "bytes":
		c.Kind = cdc.KindBytes
	}
	return c
}

func allowed(f *field) []string {
	if a, ok := f.Parameters["allowed"]; ok && a != "" {
		return strings.Split(a, ",")
	}
	return nil
}
