// Package backfill loads the rows that already exist in MySQL tables into
// the sinks of a pipeline while it keeps streaming (`rowsync backfill`),
// and, on a pipeline that is not running, as the initial load (`rowsync
// snapshot`).
//
// A table is read in primary-key order, a chunk at a time (keyset
// pagination). Each chunk is interleaved with the change stream by a low
// and a high watermark (Netflix's DBLog): a key that the log changed
// between the watermarks keeps the log's version, and the chunk's other
// rows enter the stream as Insert events at the high watermark, so per-key
// order holds and an old row from the copy never overwrites a newer change.
//
// The state of every backfill (request, chunk cursor, progress, result) is
// kept in a Store beside the pipeline's checkpoint: `rowsync backfill`
// writes requests there, the process that owns the stream picks them up,
// and after a crash or a lease handover the new owner resumes each table
// from its last applied chunk.
package backfill

import (
	"context"
	"errors"
	"time"
)

// Status is where one table's backfill stands.
type Status string

const (
	// Requested: asked for, not picked up by the pipeline yet.
	Requested Status = "requested"
	// Running: the owner is copying chunks.
	Running Status = "running"
	// Done: every row was read and applied (or dead-lettered).
	Done Status = "done"
	// Failed: stopped by an error that retrying cannot fix (Error says which).
	Failed Status = "failed"
	// Cancelled: stopped by `rowsync backfill --cancel`.
	Cancelled Status = "cancelled"
)

// Active reports whether the backfill still has work to do.
func (s Status) Active() bool { return s == Requested || s == Running }

// State is one table's backfill as stored beside the checkpoint. It is the
// request (DB, Table, ID, Keys, Chunk), the resume point (Cursor) and the
// progress (`rowsync backfill --status` prints it).
type State struct {
	DB    string `json:"db"`
	Table string `json:"table"`
	// ID tells requests of the same table apart: a new request of a table
	// whose last backfill finished gets a new ID.
	ID     string `json:"id"`
	Status Status `json:"status"`
	// Keys, when set, limits the backfill to the rows with these primary
	// keys (`rowsync verify --repair`); each key is its values in key
	// order, in MySQL text form. Empty: the whole table.
	Keys [][]string `json:"keys,omitempty"`
	// Chunk is rows per chunk query. 0: the owner's default.
	Chunk int `json:"chunk,omitempty"`
	// Cursor is the primary key of the last row of the last applied chunk,
	// its values in key order in MySQL text form; nil before the first.
	// The owner resumes after it.
	Cursor []string `json:"cursor,omitempty"`
	// Rows counts rows applied to the sinks (or dead-lettered); Dropped
	// rows of a chunk left out because the log changed their key between
	// the chunk's watermarks (the log's version wins); Chunks chunks
	// applied.
	Rows    int64 `json:"rows"`
	Dropped int64 `json:"dropped,omitempty"`
	Chunks  int64 `json:"chunks"`
	// Estimate is the table's estimated row count when the backfill
	// started (information_schema; 0 when unknown), or len(Keys).
	Estimate int64 `json:"estimate,omitempty"`
	// Watermark describes the last chunk's low and high watermark, for
	// --status ("mysql-bin.000003:4711..mysql-bin.000003:5120").
	Watermark string `json:"watermark,omitempty"`
	// Owner names the process that runs the backfill (host/pid).
	Owner string `json:"owner,omitempty"`
	// Requested, Started, Updated and Finished are when it was asked for,
	// picked up, last saved and ended (zero until then).
	Requested time.Time `json:"requested"`
	Started   time.Time `json:"started,omitzero"`
	Updated   time.Time `json:"updated,omitzero"`
	Finished  time.Time `json:"finished,omitzero"`
	// Error is why a Failed backfill stopped.
	Error string `json:"error,omitempty"`
}

// Name returns "db.table".
func (s State) Name() string { return s.DB + "." + s.Table }

// Errors of Store.
var (
	// ErrActive: Request found an active backfill of the table.
	ErrActive = errors.New("a backfill of this table is already requested or running")
	// ErrReplaced: Update found no state of the table with the same ID
	// (removed, or replaced by a newer request).
	ErrReplaced = errors.New("backfill state was replaced or removed")
)

// Store keeps the backfill states of one pipeline, one per table, beside
// its checkpoint (the same Redis server or the same directory). It is
// shared by the process that owns the stream and by `rowsync backfill`
// run from anywhere, so every write that could race is conditional.
// Implementations are safe for concurrent use.
type Store interface {
	// List returns every stored state, ordered by Requested.
	List(ctx context.Context) ([]State, error)
	// Request stores a new request (Status Requested), replacing a
	// finished, failed or cancelled state of the same table; ErrActive if
	// the table's state is Requested or Running.
	Request(ctx context.Context, st State) error
	// Update replaces the table's state with st if the stored one has
	// st.ID; ErrReplaced otherwise. The owner saves progress with it.
	Update(ctx context.Context, st State) error
	// Cancel asks the owner to stop the table's active backfill; false if
	// there is none. The owner sees it through Cancelled and stores the
	// state as Cancelled.
	Cancel(ctx context.Context, db, table string) (bool, error)
	// Cancelled reports whether the backfill with this ID was asked to stop.
	Cancelled(ctx context.Context, db, table, id string) (bool, error)
	// Beat records that owner runs the pipeline now; Owner returns the
	// newest beat ("" when none was ever made), so `backfill --wait` can
	// tell a request nobody picks up from a slow one.
	Beat(ctx context.Context, owner string) error
	Owner(ctx context.Context) (owner string, at time.Time, err error)
	// Close releases what the store opened itself.
	Close() error
}
