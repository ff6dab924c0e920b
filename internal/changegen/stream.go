package changegen

import (
	"fmt"
)

// Encodings Encode and Stream know.
const (
	EncCanalJSON     = "canal-json"
	EncCanalProtobuf = "canal-protobuf"
	EncMaxwell       = "maxwell"
	// EncMaxwellPosition is Maxwell with output_binlog_position on: each
	// message carries "position" (file:offset), a version for the guard.
	EncMaxwellPosition  = "maxwell-position"
	EncDebezium         = "debezium"          // with schema (schemas.enable=true)
	EncDebeziumNoSchema = "debezium-noschema" // the payload alone
	EncJSONL            = "jsonl"
)

// Encodings lists every encoding name.
var Encodings = []string{EncCanalJSON, EncCanalProtobuf, EncMaxwell, EncMaxwellPosition, EncDebezium, EncDebeziumNoSchema, EncJSONL}

// Decoder returns the rowsync format name that decodes encoding.
func Decoder(encoding string) string {
	switch encoding {
	case EncDebeziumNoSchema:
		return EncDebezium
	case EncMaxwellPosition:
		return EncMaxwell
	}
	return encoding
}

// Encode returns the messages that carry c in encoding: one, except for
// Debezium deletes and pk changes (see Debezium).
func Encode(encoding string, c *Change) ([]Message, error) {
	switch encoding {
	case EncCanalJSON:
		return []Message{{Value: CanalJSON(c)}}, nil
	case EncCanalProtobuf:
		return []Message{{Value: CanalProtobuf(c)}}, nil
	case EncMaxwell:
		return []Message{{Key: MaxwellKey(c), Value: Maxwell(c)}}, nil
	case EncMaxwellPosition:
		return []Message{{Key: MaxwellKey(c), Value: MaxwellPosition(c)}}, nil
	case EncDebezium:
		return Debezium(c, true), nil
	case EncDebeziumNoSchema:
		return Debezium(c, false), nil
	case EncJSONL:
		return []Message{{Value: JSONL(c)}}, nil
	}
	return nil, fmt.Errorf("changegen: unknown encoding %q", encoding)
}

// Preamble returns the messages a stream of encoding starts with: for
// Maxwell, a table-create per table so the decoder learns the types.
func Preamble(encoding string) []Message { return preamble(encoding, Tables) }

// Preamble is the package's Preamble for the set's tables.
func (s *Set) Preamble(encoding string) []Message { return preamble(encoding, s.Tables) }

func preamble(encoding string, tables []*Table) []Message {
	if encoding != EncMaxwell && encoding != EncMaxwellPosition {
		return nil
	}
	var out []Message
	for _, t := range tables {
		out = append(out, Message{Value: MaxwellTableCreate(t, baseTime)})
	}
	return out
}

// Stream encodes every change, split into Config.Partitions partitions by
// Partition (canal's pk hash), each partition starting with the Preamble.
// A Debezium pk change lands whole in one partition: the generator keeps
// a row's new key in its old key's partition.
func (s *Set) Stream(encoding string) ([][]Message, error) {
	n := max(1, s.Config.Partitions)
	parts := make([][]Message, n)
	for p := range parts {
		parts[p] = append(parts[p], s.Preamble(encoding)...)
	}
	for i := range s.Changes {
		c := &s.Changes[i]
		msgs, err := Encode(encoding, c)
		if err != nil {
			return nil, err
		}
		p := Partition(c.Table, c.Image(), n)
		parts[p] = append(parts[p], msgs...)
	}
	return parts, nil
}
