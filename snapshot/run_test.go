package snapshot

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/checkpoint"
)

// startSource stands for a log source that saves its start position when
// it is built, as the binlog source does.
type startSource struct{}

func (startSource) Next(ctx context.Context) (cdc.Batch, error) {
	return cdc.Batch{}, errors.New("not streamed")
}
func (startSource) Close(context.Context) error { return nil }

func TestPinStart(t *testing.T) {
	ctx := context.Background()
	store, err := checkpoint.NewFile(filepath.Join(t.TempDir(), "cp.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	started := 0
	start := func(ctx context.Context) (cdc.Source, error) {
		started++
		return startSource{}, store.Save(ctx, checkpoint.Position{File: "mysql-bin.000007", Offset: 4})
	}
	// No checkpoint: the source's start is resolved and saved.
	if err := PinStart(ctx, store, "p", false, start, nil); err != nil || started != 1 {
		t.Fatalf("first pin: %v (started %d)", err, started)
	}
	if pos, ok, _ := store.Load(ctx); !ok || pos.File != "mysql-bin.000007" {
		t.Fatalf("saved %v %v", pos, ok)
	}
	// A checkpoint exists: refused without force, kept with it.
	err = PinStart(ctx, store, "p", false, start, nil)
	if err == nil || !strings.Contains(err.Error(), "already has a binlog checkpoint") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("second pin without force: %v", err)
	}
	if err := PinStart(ctx, store, "p", true, start, nil); err != nil || started != 1 {
		t.Fatalf("forced pin: %v (started %d)", err, started)
	}
	// A source that saves nothing is an error, not a silent start.
	empty, _ := checkpoint.NewFile(filepath.Join(t.TempDir(), "none.json"))
	defer empty.Close()
	err = PinStart(ctx, empty, "p", false, func(context.Context) (cdc.Source, error) { return startSource{}, nil }, nil)
	if err == nil || !strings.Contains(err.Error(), "not saved") {
		t.Fatalf("pin with nothing saved: %v", err)
	}
}
