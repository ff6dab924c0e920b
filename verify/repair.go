package verify

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/rowsync/rowsync/backfill"
)

// Limits of a repair.
const (
	// RepairChunk is the most primary keys one backfill request carries by
	// default: a request is stored whole beside the checkpoint (one Redis
	// hash field, or the file store's JSON) and read by every `rowsync
	// backfill --status`, so it stays small; more keys go in several
	// requests, one after the other.
	RepairChunk = 5000
	// MaxRepairKeys is how many differing keys Keys collects by default
	// for one table; past it, a whole-table backfill is the better repair.
	MaxRepairKeys = 100_000
)

// Keys collects the distinct primary keys of the mismatches a repair
// fixes (missing, different, extra), at most Max (0: MaxRepairKeys).
// The zero value is ready to use; it is not safe for concurrent use.
type Keys struct {
	Max int
	// Dropped counts the distinct keys past Max (a key seen again after
	// Max was reached counts again).
	Dropped int
	list    [][]string
	seen    map[string]struct{}
}

// Add collects m's primary key if a backfill of it repairs m.
func (k *Keys) Add(m Mismatch) {
	switch m.Kind {
	case Missing, Different, Extra:
	default:
		return // unrenderable rows fail again; unchecked entries have no key
	}
	if m.PK == nil {
		return
	}
	id := strings.Join(m.PK, "\x00")
	if _, ok := k.seen[id]; ok {
		return
	}
	if len(k.list) >= cmpOr(k.Max, MaxRepairKeys) {
		k.Dropped++
		return
	}
	if k.seen == nil {
		k.seen = map[string]struct{}{}
	}
	k.seen[id] = struct{}{}
	k.list = append(k.list, m.PK)
}

func cmpOr(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// List returns the collected keys in the order first seen.
func (k *Keys) List() [][]string { return k.list }

// RepairOptions tune Repair.
type RepairOptions struct {
	// Chunk is the most keys per request. Default: RepairChunk
	Chunk int
	// Poll is how often the store is read while a request runs.
	// Default: 500ms
	Poll time.Duration
	// Progress, if not nil, gets the request's state whenever its status
	// or row count changes.
	Progress func(backfill.State)
}

// Repair pushes the rows with primary keys keys (values in key order, in
// MySQL text form) of db.table through the running pipeline again: it
// stores a backfill request of just those keys (backfill.State.Keys) in
// the pipeline's store, at most opt.Chunk keys per request, and waits for
// the process that owns the stream (`rowsync run`) to finish each before
// the next. The owner reads each key's current row and writes it to every
// sink, or deletes the key where the row no longer exists, interleaved
// with the stream like any backfill, so a repair never overwrites a newer
// change.
//
// It fails when the table already has an active backfill
// (backfill.ErrActive), when a request fails, is cancelled or replaced,
// or when ctx ends; a request being waited for then stays in the store
// and the owner carries on with it.
func Repair(ctx context.Context, store backfill.Store, db, table string, keys [][]string, opt RepairOptions) error {
	chunk := cmpOr(opt.Chunk, RepairChunk)
	poll := opt.Poll
	if poll <= 0 {
		poll = 500 * time.Millisecond
	}
	for start := 0; start < len(keys); start += chunk {
		part := keys[start:min(start+chunk, len(keys))]
		st := backfill.State{DB: db, Table: table, ID: backfill.NewID(), Status: backfill.Requested,
			Keys: part, Estimate: int64(len(part)), Requested: time.Now().UTC()}
		if err := store.Request(ctx, st); err != nil {
			return fmt.Errorf("repair %s: request: %w", st.Name(), err)
		}
		last := st
		final, err := backfill.Wait(ctx, store, []backfill.State{st}, poll, func(cur []backfill.State, err error) {
			if err == nil && opt.Progress != nil && (cur[0].Status != last.Status || cur[0].Rows != last.Rows) {
				opt.Progress(cur[0])
			}
			if err == nil {
				last = cur[0]
			}
		})
		if err != nil {
			return fmt.Errorf("repair %s: waiting for request %s: %w", st.Name(), st.ID, err)
		}
		switch f := final[0]; f.Status {
		case backfill.Done:
		case backfill.Cancelled:
			return fmt.Errorf("repair %s: request %s was cancelled", st.Name(), st.ID)
		default:
			return fmt.Errorf("repair %s: request %s %s: %s", st.Name(), st.ID, f.Status, f.Error)
		}
	}
	return nil
}
