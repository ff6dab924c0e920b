package backfill

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/rowsync/rowsync/internal/atomicfile"
)

// File is a Store in one JSON file beside the checkpoint file
// (FilePath). Every write reads the file, changes it and replaces it
// atomically (atomicfile) while holding an flock(2) on <path>.lock, so
// writers in any process are serialised and a check and its write are
// one step; readers read the file without the lock (a rename never shows
// a torn file). The kernel drops the lock of a killed process.
type File struct {
	path string
}

var _ Store = (*File)(nil)

// fileData is the file's content.
type fileData struct {
	// States are the backfills by "db.table".
	States map[string]State `json:"states"`
	// Cancel holds, by "db.table", the ID of the backfill asked to stop.
	Cancel map[string]string `json:"cancel,omitempty"`
	Owner  *beat             `json:"owner,omitempty"`
}

// NewFile returns a store at path, creating its directory if needed.
func NewFile(path string) (*File, error) {
	if path == "" {
		return nil, errors.New("backfill: empty file path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("backfill dir: %w", err)
	}
	return &File{path: path}, nil
}

// Path returns the file the store lives in.
func (f *File) Path() string { return f.path }

// read loads the file; a missing file is an empty store.
func (f *File) read() (fileData, error) {
	d := fileData{States: map[string]State{}, Cancel: map[string]string{}}
	b, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return d, nil
	}
	if err != nil {
		return d, fmt.Errorf("read backfill state: %w", err)
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return d, fmt.Errorf("%s: %w", f.path, err)
	}
	if d.States == nil {
		d.States = map[string]State{}
	}
	if d.Cancel == nil {
		d.Cancel = map[string]string{}
	}
	return d, nil
}

// lockPoll is how often a writer retries a lock another process holds.
const lockPoll = 2 * time.Millisecond

// change runs fn on the file's content under the lock and writes the
// result back when fn returns true.
func (f *File) change(ctx context.Context, fn func(*fileData) bool) error {
	lf, err := os.OpenFile(f.path+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("backfill lock: %w", err)
	}
	defer lf.Close() // closing releases the lock
	// Poll rather than block, so a cancelled context ends the wait.
	for {
		err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			return fmt.Errorf("backfill lock %s: %w", lf.Name(), err)
		}
		t := time.NewTimer(lockPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	d, err := f.read()
	if err != nil {
		return err
	}
	if !fn(&d) {
		return nil
	}
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return fmt.Errorf("encode backfill state: %w", err)
	}
	if err := atomicfile.Write(f.path, append(b, '\n')); err != nil {
		return fmt.Errorf("save backfill state: %w", err)
	}
	return nil
}

// List returns every state, ordered by Requested (then name).
func (f *File) List(ctx context.Context) ([]State, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d, err := f.read()
	if err != nil {
		return nil, err
	}
	out := make([]State, 0, len(d.States))
	for _, st := range d.States {
		out = append(out, st)
	}
	sortStates(out)
	return out, nil
}

// Request stores st unless the table has an active backfill.
func (f *File) Request(ctx context.Context, st State) error {
	active := false
	err := f.change(ctx, func(d *fileData) bool {
		if old, ok := d.States[st.Name()]; ok && old.Status.Active() {
			active = true
			return false
		}
		d.States[st.Name()] = st
		delete(d.Cancel, st.Name())
		return true
	})
	if err == nil && active {
		err = ErrActive
	}
	return err
}

// Update replaces the state if the stored one has st.ID.
func (f *File) Update(ctx context.Context, st State) error {
	replaced := false
	err := f.change(ctx, func(d *fileData) bool {
		if old, ok := d.States[st.Name()]; !ok || old.ID != st.ID {
			replaced = true
			return false
		}
		d.States[st.Name()] = st
		return true
	})
	if err == nil && replaced {
		err = ErrReplaced
	}
	return err
}

// Cancel flags the table's active backfill.
func (f *File) Cancel(ctx context.Context, db, table string) (bool, error) {
	found := false
	err := f.change(ctx, func(d *fileData) bool {
		st, ok := d.States[db+"."+table]
		if !ok || !st.Status.Active() {
			return false
		}
		d.Cancel[st.Name()] = st.ID
		found = true
		return true
	})
	return found && err == nil, err
}

// Cancelled reports whether the backfill with id was asked to stop.
func (f *File) Cancelled(ctx context.Context, db, table, id string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	d, err := f.read()
	if err != nil {
		return false, err
	}
	v, ok := d.Cancel[db+"."+table]
	return ok && v == id, nil
}

// Beat records owner as running now.
func (f *File) Beat(ctx context.Context, owner string) error {
	return f.change(ctx, func(d *fileData) bool {
		d.Owner = &beat{Owner: owner, At: time.Now()}
		return true
	})
}

// Owner returns the newest beat.
func (f *File) Owner(ctx context.Context) (string, time.Time, error) {
	if err := ctx.Err(); err != nil {
		return "", time.Time{}, err
	}
	d, err := f.read()
	if err != nil || d.Owner == nil {
		return "", time.Time{}, err
	}
	return d.Owner.Owner, d.Owner.At, nil
}

// Close does nothing; File holds no open handles between calls.
func (f *File) Close() error { return nil }
