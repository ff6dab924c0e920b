package decode

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // time_zone names resolve without the system zone database

	"github.com/rowsync/rowsync/cdc"
)

// Options configure a Decoder. The zero value is valid.
type Options struct {
	// KeyColumns returns the configured primary-key columns of db.table, used
	// when a message does not say which columns form the key (canal pkNames
	// null, Maxwell without primary_key). nil, or a nil answer, leaves
	// Event.PK empty. It must be safe for concurrent use.
	KeyColumns func(db, table string) []string
	// TimeZone is the zone in which the producer printed TIMESTAMP text (for
	// canal: the canal server JVM's default zone). TIMESTAMP values are read
	// in it and converted to UTC instants. DATETIME is a wall clock and is
	// never shifted (cdc.Value reads it as UTC).
	// Default: UTC.
	TimeZone *time.Location
	// Schemas, if set, is the schema source of the formats whose messages
	// carry no column types (Debezium without schemas, Maxwell's binary and
	// temporal values, JSON lines): their values are typed from the table's
	// definition exactly as the binlog path types them, and a value that
	// contradicts its column's type is an error (the message goes to the dead
	// letter with the reason). Decoders call it synchronously from Decode;
	// it reads the database the first time a table is seen.
	// Default: none (each format's untyped behaviour, see README).
	Schemas cdc.Schemas
	// Debezium are the connector settings that decide how Debezium encodes
	// values; they matter only for messages without schemas, read with
	// Schemas.
	Debezium DebeziumModes
	// OnDDL, if set, receives the schema changes a decoder meets (they give
	// no row events). It is called synchronously from Decode, so it must be
	// quick and safe for concurrent use when Decode is.
	OnDDL func(DDL)
	// Limits bound one message; see Limits for the defaults. Decoders stop
	// parsing at MaxRows; Bounded enforces the rest.
	Limits Limits
}

// DebeziumModes are the Debezium MySQL connector's value-encoding settings.
// The zero value is the connector's defaults.
type DebeziumModes struct {
	// Decimal is decimal.handling.mode: precise (base64 of the unscaled
	// integer), string or double. Default: precise
	Decimal string `yaml:"decimal_handling_mode"`
	// Time is time.precision.mode: adaptive_time_microseconds, adaptive or
	// connect. Default: adaptive_time_microseconds
	Time string `yaml:"time_precision_mode"`
	// Binary is binary.handling.mode: bytes, base64, base64-url-safe or
	// hex. Default: bytes
	Binary string `yaml:"binary_handling_mode"`
}

// Validate reports every unknown mode, each named by its key
// (debezium.decimal_handling_mode, ...).
func (m DebeziumModes) Validate() error {
	var errs []error
	check := func(key, v string, valid ...string) {
		if v != "" && !slices.Contains(valid, v) {
			errs = append(errs, fmt.Errorf("%s: unknown %q (want %s)", key, v, strings.Join(valid, ", ")))
		}
	}
	check("debezium.decimal_handling_mode", m.Decimal, "precise", "string", "double")
	check("debezium.time_precision_mode", m.Time, "adaptive_time_microseconds", "adaptive", "connect")
	check("debezium.binary_handling_mode", m.Binary, "bytes", "base64", "base64-url-safe", "hex")
	return errors.Join(errs...)
}

// Location returns TimeZone, or UTC when it is nil.
func (o *Options) Location() *time.Location {
	if o.TimeZone == nil {
		return time.UTC
	}
	return o.TimeZone
}

// DDL is a schema change seen in the stream (cdc.DDL: the binlog source
// reports the same).
type DDL = cdc.DDL

// ReportDDL is what a decoder does with a schema change: the cached
// definitions of the tables it names are forgotten (the next message reads
// them again) and Options.OnDDL, if set, receives it.
func ReportDDL(o Options, d DDL) {
	if o.Schemas != nil {
		for _, t := range d.Tables() {
			o.Schemas.Forget(t[0], t[1])
		}
	}
	if o.OnDDL != nil {
		o.OnDDL(d)
	}
}

// PosText renders where m came from as "topic/partition@offset" (for AMQP:
// "queue/0@deliverytag"), the Position.Text of formats that carry no binlog
// position of their own.
func (m *Message) PosText() string {
	var buf [64]byte // one allocation: the string
	return string(m.AppendPosText(buf[:0]))
}

// AppendPosText appends PosText's text to b: a decoder that keeps texts
// in blocks of its own makes the position's there.
func (m *Message) AppendPosText(b []byte) []byte {
	b = append(b, m.Topic...)
	b = strconv.AppendInt(append(b, '/'), int64(m.Partition), 10)
	return strconv.AppendInt(append(b, '@'), m.Offset, 10)
}

// ErrSchemaUnavailable marks a decode error caused by the schema source not
// answering (the database is down, a timeout): the message itself is not
// known to be bad. It is transient: the Kafka and RabbitMQ sources decode
// the same message again with capped backoff (Retry) instead of
// dead-lettering it.
var ErrSchemaUnavailable = errors.New("schema source unavailable")

// Settings are the decoding keys of a message source's config block
// (source.kafka, source.rabbitmq), inlined there.
type Settings struct {
	// TimeZone is the zone the producer printed TIMESTAMP text in (canal,
	// canal-protobuf and jsonl: the canal server JVM's default zone): an
	// IANA name ("Asia/Shanghai") or an offset ("+08:00"). Default: UTC
	TimeZone string `yaml:"time_zone"`
	// Debezium are the connector's value modes; they matter for messages
	// without schemas typed by a schema source. Default: the connector's
	// defaults (precise, adaptive_time_microseconds, bytes)
	Debezium DebeziumModes `yaml:"debezium"`
}

// Validate reports every problem, each named by its key.
func (s Settings) Validate() error {
	var errs []error
	if _, err := s.Location(); err != nil {
		errs = append(errs, fmt.Errorf("time_zone: %w", err))
	}
	if err := s.Debezium.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Location resolves TimeZone; "" is UTC.
func (s Settings) Location() (*time.Location, error) {
	tz := strings.TrimSpace(s.TimeZone)
	switch {
	case tz == "" || strings.EqualFold(tz, "utc"):
		return time.UTC, nil
	case tz[0] == '+' || tz[0] == '-':
		t, err := time.Parse("-07:00", tz)
		if err != nil {
			return nil, fmt.Errorf("%q is not an offset like +08:00", tz)
		}
		_, off := t.Zone()
		return time.FixedZone(tz, off), nil
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("unknown zone %q", tz)
	}
	return loc, nil
}
