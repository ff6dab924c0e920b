// Package cdc holds rowsync's shared vocabulary: the row-change event every
// source produces, the Source and Sink contracts every connector implements,
// and the conversion between MySQL column types and typed Go values.
//
// It imports nothing of rowsync's own; every other package depends on it.
package cdc

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Op is the kind of row change. A snapshot read is an Insert.
type Op uint8

const (
	Insert Op = iota + 1
	Update
	Delete
)

// String returns "insert", "update" or "delete".
func (o Op) String() string {
	switch o {
	case Insert:
		return "insert"
	case Update:
		return "update"
	case Delete:
		return "delete"
	}
	return "op(" + strconv.Itoa(int(o)) + ")"
}

// ParseOp accepts insert/update/delete in any case.
func ParseOp(s string) (Op, error) {
	switch strings.ToLower(s) {
	case "insert":
		return Insert, nil
	case "update":
		return Update, nil
	case "delete":
		return Delete, nil
	}
	return 0, fmt.Errorf("unknown op %q", s)
}

// Value is one column value. The dynamic type is one of:
//
//	nil            SQL NULL
//	int64          every integer that fits (TINYINT..BIGINT, YEAR, BIT)
//	uint64         BIGINT UNSIGNED above math.MaxInt64 only
//	float64        FLOAT (rounded to float32 precision) and DOUBLE
//	Decimal        DECIMAL/NUMERIC, exact text
//	string         CHAR/VARCHAR/TEXT/ENUM (the label), zero or invalid dates as text
//	[]byte         BINARY/VARBINARY/BLOB and binary-charset strings
//	time.Time      DATE, DATETIME (wall clock read as UTC), TIMESTAMP (instant, UTC)
//	time.Duration  TIME
//	JSON           JSON column text
//	Set            SET labels
//
// Every source produces the same Value for the same database value, so a
// sink's output never depends on the path a change took.
type Value = any

// Decimal is an exact decimal number in MySQL text form ("-12.50").
type Decimal string

// JSON is the text of a JSON column value.
type JSON string

// Set is the labels of a SET column value, in column definition order.
type Set []string

// Event is one row change.
type Event struct {
	DB, Table string
	Op        Op
	// PK names the primary-key columns in key order. Empty when the source
	// does not know them; the table's configured key columns apply then.
	PK      []string
	Before  *Row // nil for Insert
	After   *Row // nil for Delete
	Columns []Column
	Commit  time.Time // commit / execute time at the source; zero if unknown
	Pos     Position
	// Read marks a row read from its table by a backfill or snapshot, not
	// a logged change: an Insert whose After is the row as MySQL held it
	// at Pos. It is fresh (refetch need not read it again) and changes
	// nothing a cache could hold (the invalidator skips it unless its
	// rule asks).
	Read bool
}

// Position says where an event came from. Version orders events of one
// database stream: where the format gives a monotonic binlog position it is
// non-zero, and a sink may skip a write whose Version is older than the one
// it stored for the same key. Text is a human-readable form for logs and the
// dead letter ("mysql-bin.000003:4711", "orders/2@1811").
type Position struct {
	Version uint64
	Text    string
}

// String returns Text.
func (p Position) String() string { return p.Text }

// BinlogVersion packs a binlog file sequence number (the numeric suffix of
// "mysql-bin.000003") and an offset into a Version that sorts like the
// binlog: 24 bits of sequence, 40 bits of offset.
func BinlogVersion(fileSeq uint64, offset uint64) uint64 {
	return fileSeq<<40 | offset&(1<<40-1)
}

// BinlogFileSeq returns the numeric suffix of a binlog file name, or false.
func BinlogFileSeq(file string) (uint64, bool) {
	i := strings.LastIndexByte(file, '.')
	if i < 0 || i == len(file)-1 {
		return 0, false
	}
	n, err := strconv.ParseUint(file[i+1:], 10, 64)
	if err != nil || n >= 1<<24 {
		return 0, false
	}
	return n, true
}

// BinlogPosVersion is BinlogVersion from a file name; 0 if the name has no
// numeric suffix.
func BinlogPosVersion(file string, offset uint64) uint64 {
	seq, ok := BinlogFileSeq(file)
	if !ok {
		return 0
	}
	return BinlogVersion(seq, offset)
}

// Image returns the row a sink should key on: After, or Before for a Delete.
func (e *Event) Image() *Row {
	if e.After != nil {
		return e.After
	}
	return e.Before
}

// Column returns the column named name and true, or false.
func (e *Event) Column(name string) (Column, bool) {
	for _, c := range e.Columns {
		if c.Name == name {
			return c, true
		}
	}
	return Column{}, false
}

// Key returns the primary-key values of row in key order, or an error
// naming the first key column that is missing or NULL.
func (e *Event) Key(row *Row, pk []string) ([]Value, error) {
	if len(pk) == 0 {
		return nil, errors.New("no primary key columns")
	}
	vals := make([]Value, len(pk))
	for i, c := range pk {
		v, ok := row.Lookup(c)
		if !ok || v == nil {
			return nil, fmt.Errorf("primary key column %q missing or NULL", c)
		}
		vals[i] = v
	}
	return vals, nil
}

// Batch is delivered once by a Source. Ack must be called exactly once per
// batch, in the order Next returned them (a second call returns an error).
//
// Ack(ctx, nil) says the batch was applied (or dead-lettered): the source
// may commit its position once every earlier batch is acked too.
//
// Ack(ctx, err) with err != nil — a nack — says the batch was not applied
// and will not be. The source must then never commit a position at or past
// it (acks of later batches no longer move the checkpoint) and must deliver
// its messages again, in order, before anything after them: either by
// rewinding itself (RabbitMQ recycles its channel, so the broker redelivers
// every unacked message in queue order) or by failing — its next Next
// returns an error wrapping err, and a restart resumes from the last
// committed position (Kafka, binlog). The pipeline nacks every batch it
// took and gives up on (shutdown grace expired, a fatal error).
//
// Events belong to the pipeline until the batch is acked or nacked: a
// source must not reuse their memory before then (the pipeline reads them
// in place, it does not copy them). Once it is acked (nil), nothing holds
// them: the source may reuse the Rows it made for the batch (RowPool),
// so whoever keeps a Row, or an Event with its images, past the ack
// copies it first (Row.Clone, CloneEvents). A nacked batch's memory is not reused.
type Batch struct {
	Events []Event
	// Rejects are messages the source could not decode. The pipeline writes
	// them to the dead letter before acking the batch, so they are not lost.
	Rejects []Reject
	// Through, when not 0, says every change whose Pos.Version is at most
	// Through has been delivered in this batch or an earlier one: the
	// source has read its log that far. 0: the source cannot say (a
	// message queue). A backfill waits for it to pass a chunk's high
	// watermark before the chunk enters the stream.
	Through uint64
	Ack     func(ctx context.Context, err error) error
}

// Reject is an undecodable message with its reason.
type Reject struct {
	Pos    Position
	Raw    []byte
	Reason error
}

// Source yields batches of events.
type Source interface {
	// Next blocks until a batch is ready or ctx ends. An error other than
	// ctx's is fatal for the source.
	Next(ctx context.Context) (Batch, error)
	// Close releases the source; it does not ack anything.
	Close(ctx context.Context) error
}

// Sink applies events to a target.
//
// Apply must be idempotent: replaying a batch, or one older than the stored
// state, changes nothing. Apply receives the events of each key in source
// order; it is called from one goroutine per shard, so an implementation is
// safe for concurrent use by several shards. A *BatchError reports events
// that can never apply (they go to the dead letter); any other error is
// transient and the pipeline retries the whole slice.
//
// A sink must not keep an event's Row after Apply returns: the batch is
// acked then, and its source reuses the rows (see Batch). Copy a Row it
// keeps (Row.Clone); the values need no copy (recycling clears a row, it
// changes no value in it).
type Sink interface {
	Apply(ctx context.Context, events []Event) error
	Close(ctx context.Context) error
}

// Filter is an optional Sink extra: a sink that implements it only gets
// events of tables it wants. The answer must not change over the sink's life.
type Filter interface {
	Wants(db, table string) bool
}

// Pinger is an optional Sink or Source extra for `rowsync check` and
// readiness: Ping returns nil when the target answers. Safe for concurrent
// use with Apply or Next.
type Pinger interface {
	Ping(ctx context.Context) error
}

// PingFunc makes a function a Pinger.
type PingFunc func(ctx context.Context) error

// Ping calls f.
func (f PingFunc) Ping(ctx context.Context) error { return f(ctx) }

// Checker is an optional extra of a component's config block for `rowsync
// check`: Check returns the line naming the connection the component makes
// from the block (key is the block's key path, "source.kafka") and the
// Pinger that tries it, or a nil Pinger when the block makes none.
type Checker interface {
	Check(key string) (name string, p Pinger)
}

// Runner is an optional Sink extra for work a sink does beside Apply (the
// invalidator's delayed second deletes). Run is called once, in its own
// goroutine, after the sink is built; it returns nil when ctx ends and an
// error only when the sink cannot go on, which stops the pipeline.
type Runner interface {
	Run(ctx context.Context) error
}

// SchemaChecker is an optional Sink extra: before streaming, rowsync
// hands it every existing table routed to it with the table's columns and
// primary key as MySQL has them now (pk empty for a keyless table).
// CheckSchema returns every mistake the config alone cannot show (a key
// template naming a missing column, a {pk} key on a keyless table), each
// starting with its key inside the sink's table block ("key: unknown
// column \"emial\""); nil when the sink has no rule for the table.
type SchemaChecker interface {
	CheckSchema(db, table string, columns, pk []string) error
}

// BatchError reports events that failed permanently, by index into the
// slice given to Apply. Events not listed were applied.
type BatchError struct {
	Failed map[int]error
}

func (e *BatchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d event(s) failed permanently", len(e.Failed))
	for i, err := range e.Failed {
		fmt.Fprintf(&b, "; first [%d]: %v", i, err)
		break
	}
	return b.String()
}

// Fail records a permanent failure of event i, creating the error if nil.
func (e *BatchError) Fail(i int, err error) {
	if e.Failed == nil {
		e.Failed = map[int]error{}
	}
	e.Failed[i] = err
}

// Err returns e as an error if anything failed, else nil.
func (e *BatchError) Err() error {
	if e == nil || len(e.Failed) == 0 {
		return nil
	}
	return e
}

// ErrPermanent marks an error that retrying cannot fix. Wrap it
// (fmt.Errorf("...: %w", cdc.ErrPermanent)) so errors.Is finds it.
var ErrPermanent = errors.New("permanent")
