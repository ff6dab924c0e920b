package decode

import (
	"strconv"
	"time"

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
	// OnDDL, if set, receives the schema changes a decoder meets (they give
	// no row events). It is called synchronously from Decode, so it must be
	// quick and safe for concurrent use when Decode is.
	OnDDL func(DDL)
	// Limits bound one message; see Limits for the defaults. Decoders stop
	// parsing at MaxRows; Bounded enforces the rest.
	Limits Limits
}

// Location returns TimeZone, or UTC when it is nil.
func (o *Options) Location() *time.Location {
	if o.TimeZone == nil {
		return time.UTC
	}
	return o.TimeZone
}

// DDL is a schema change seen in the stream. It carries no row image.
type DDL struct {
	DB, Table string
	// Type is the producer's name for the statement kind (canal: CREATE,
	// ALTER, ERASE, TRUNCATE, RENAME, CINDEX, DINDEX, QUERY).
	Type   string
	SQL    string
	Commit time.Time
	Pos    cdc.Position
}

// PosText renders where m came from as "topic/partition@offset" (for AMQP:
// "queue/0@deliverytag"), the Position.Text of formats that carry no binlog
// position of their own.
func (m *Message) PosText() string {
	return m.Topic + "/" + strconv.FormatInt(int64(m.Partition), 10) + "@" + strconv.FormatInt(m.Offset, 10)
}
