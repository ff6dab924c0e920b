package backfill

import (
	"context"
	"sync"
	"testing"
	"time"
)

// stuckStore is a Memory store whose Update waits until release is
// closed: a table's backfill that is busy for as long as the test likes.
type stuckStore struct {
	*Memory
	entered chan struct{}
	once    sync.Once
	release chan struct{}
}

func (s *stuckStore) Update(ctx context.Context, st State) error {
	s.once.Do(func() { close(s.entered) })
	select {
	case <-s.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.Memory.Update(ctx, st)
}

// TestBeatWhileATableRuns: the owner's heartbeat goes on while one table's
// backfill holds the engine, so `backfill --wait` and `snapshot` keep
// seeing a live owner during a long table (it stopped for the whole table).
func TestBeatWhileATableRuns(t *testing.T) {
	store := &stuckStore{Memory: NewMemory(), entered: make(chan struct{}), release: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := store.Request(ctx, State{DB: "d", Table: "t", ID: "1", Status: Requested, Keys: [][]string{{"1"}}, Requested: time.Now()}); err != nil {
		t.Fatal(err)
	}
	e := &Engine{Store: store, Source: NewStill(), Owner: "test"}
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	select {
	case <-store.entered:
	case <-time.After(time.Minute):
		t.Fatal("the engine never took the request")
	}
	// a first beat, then a later one while the table is still stuck
	deadline := time.Now().Add(time.Minute)
	var first time.Time
	for first.IsZero() {
		if _, first, _ = store.Owner(ctx); first.IsZero() && time.Now().After(deadline) {
			t.Fatal("no heartbeat at all")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for {
		owner, at, _ := store.Owner(ctx)
		if owner == "test" && at.After(first) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new heartbeat while the table ran (owner %q, last beat %v)", owner, at)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// cancel first: released with ctx live, the engine would go on to
	// read the table through its (absent) MySQL
	cancel()
	close(store.release)
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("the engine did not stop")
	}
}
