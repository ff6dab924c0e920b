package checkpoint

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// gatedStore wraps a real store: Save blocks until the test opens the gate,
// and every save is recorded with how many ran at once.
type gatedStore struct {
	Store
	gate chan struct{} // a receive per Save; closed: no blocking

	failMu sync.Mutex
	fail   error

	mu       sync.Mutex
	saves    []Position
	inFlight int
	maxIn    int
}

func (g *gatedStore) Save(ctx context.Context, p Position) error {
	g.mu.Lock()
	g.inFlight++
	g.maxIn = max(g.maxIn, g.inFlight)
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.inFlight--
		g.mu.Unlock()
	}()
	select {
	case <-g.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	g.failMu.Lock()
	fail := g.fail
	g.failMu.Unlock()
	if fail != nil {
		return fail
	}
	if err := g.Store.Save(ctx, p); err != nil {
		return err
	}
	g.mu.Lock()
	g.saves = append(g.saves, p)
	g.mu.Unlock()
	return nil
}

func (g *gatedStore) recorded() ([]Position, int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]Position(nil), g.saves...), g.maxIn
}

func pos(i int) Position { return Position{File: "mysql-bin.000001", Offset: uint64(i)} }

// poll waits, generously, for cond.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSaverNeverBlocks: while the store hangs in a save, acks return at
// once; saves run one at a time and each writes the newest acked position,
// so the stored position only moves forward; Close writes the last one.
func TestSaverNeverBlocks(t *testing.T) {
	file, err := NewFile(filepath.Join(t.TempDir(), "cp.json"))
	if err != nil {
		t.Fatal(err)
	}
	g := &gatedStore{Store: file, gate: make(chan struct{})}
	s := NewSaver(g, time.Millisecond, Position{})
	if err := s.Ack(pos(1)); err != nil {
		t.Fatal(err)
	}
	// the first save starts and hangs on the gate; acks go on regardless
	poll(t, "the first save to start", func() bool { g.mu.Lock(); defer g.mu.Unlock(); return g.inFlight == 1 })
	for i := 2; i <= 1000; i++ {
		if err := s.Ack(pos(i)); err != nil {
			t.Fatal(err)
		}
	}
	if s.Saved() != (Position{}) {
		t.Fatalf("saved %v before the store returned", s.Saved())
	}
	close(g.gate)
	poll(t, "the newest position to be saved", func() bool { return s.Saved() == pos(1000) })
	for i := 1001; i <= 1100; i++ {
		if err := s.Ack(pos(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	saves, maxIn := g.recorded()
	if maxIn != 1 {
		t.Fatalf("%d saves ran at once", maxIn)
	}
	for i := 1; i < len(saves); i++ {
		if saves[i].Offset <= saves[i-1].Offset {
			t.Fatalf("save %d wrote %v after %v", i, saves[i], saves[i-1])
		}
	}
	if len(saves) < 2 || saves[0] != pos(1) || saves[len(saves)-1] != pos(1100) {
		t.Fatalf("saves %v: want pos 1 first and 1100 last", saves)
	}
	got, ok, err := file.Load(context.Background())
	if err != nil || !ok || got != pos(1100) {
		t.Fatalf("stored %v ok=%v err=%v, want %v", got, ok, err, pos(1100))
	}
	if err := s.Ack(pos(1101)); !errors.Is(err, ErrSaverClosed) {
		t.Fatalf("ack after close: %v", err)
	}
}

// TestSaverCoalesces: many acks within one interval cost one or two
// writes, not one each; Flush writes the newest at once.
func TestSaverCoalesces(t *testing.T) {
	file, err := NewFile(filepath.Join(t.TempDir(), "cp.json"))
	if err != nil {
		t.Fatal(err)
	}
	g := &gatedStore{Store: file, gate: make(chan struct{})}
	close(g.gate)
	s := NewSaver(g, time.Hour, Position{})
	defer s.Close(context.Background())
	for i := 1; i <= 500; i++ {
		if err := s.Ack(pos(i)); err != nil {
			t.Fatal(err)
		}
	}
	// the first ack after a quiet spell is saved at once, in the background
	poll(t, "the leading save", func() bool { saves, _ := g.recorded(); return len(saves) >= 1 })
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	saves, _ := g.recorded()
	if len(saves) > 2 || saves[len(saves)-1] != pos(500) {
		t.Fatalf("500 acks in one interval gave saves %v; want at most 2, the last at 500", saves)
	}
	if s.Saved() != pos(500) || s.Acked() != pos(500) {
		t.Fatalf("saved %v acked %v", s.Saved(), s.Acked())
	}
}

// TestSaverRetriesFailedSaves: a store that is down does not fail acks;
// Err reports it, saves are retried, and the newest position lands once
// the store is back.
func TestSaverRetriesFailedSaves(t *testing.T) {
	file, err := NewFile(filepath.Join(t.TempDir(), "cp.json"))
	if err != nil {
		t.Fatal(err)
	}
	g := &gatedStore{Store: file, gate: make(chan struct{}), fail: errors.New("disk full")}
	close(g.gate)
	s := NewSaver(g, time.Millisecond, Position{})
	if err := s.Ack(pos(1)); err != nil {
		t.Fatal(err)
	}
	poll(t, "the background save to fail", func() bool { return s.Err() != nil })
	if !strings.Contains(s.Err().Error(), "disk full") || !strings.Contains(s.Err().Error(), "save checkpoint") {
		t.Fatalf("Err() = %q", s.Err())
	}
	if err := s.Ack(pos(2)); err != nil {
		t.Fatalf("ack while the store is down: %v", err)
	}
	if err := s.Flush(context.Background()); err == nil {
		t.Fatal("flush while the store is down succeeded")
	}
	if _, ok, _ := file.Load(context.Background()); ok {
		t.Fatal("a failed save stored something")
	}
	g.failMu.Lock()
	g.fail = nil
	g.failMu.Unlock()
	poll(t, "a retried save to succeed", func() bool { return s.Saved() == pos(2) })
	if s.Err() != nil {
		t.Fatalf("Err() after recovery = %v", s.Err())
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, ok, err := file.Load(context.Background())
	if err != nil || !ok || got != pos(2) {
		t.Fatalf("stored %v %v %v, want %v", got, ok, err, pos(2))
	}
}

// TestSaverRedis runs the saver over the real Redis store.
func TestSaverRedis(t *testing.T) {
	rdb := newRedis(t)
	prefix := "rs_test_saver_" + time.Now().Format("150405.000000") + ":"
	t.Cleanup(func() { rdb.Del(context.Background(), prefix+"p") })
	r, err := NewRedis(rdb, prefix, "p")
	if err != nil {
		t.Fatal(err)
	}
	s := NewSaver(r, 10*time.Millisecond, Position{})
	for i := 1; i <= 2000; i++ {
		if err := s.Ack(pos(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, ok, err := r.Load(context.Background())
	if err != nil || !ok || got != pos(2000) {
		t.Fatalf("stored %v ok=%v err=%v", got, ok, err)
	}
}
