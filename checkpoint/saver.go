package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rowsync/rowsync/internal/backoff"
	"github.com/rowsync/rowsync/metrics"
)

// DefaultSaveTimeout bounds one background save of a Saver.
const DefaultSaveTimeout = 30 * time.Second

// ErrSaverClosed is returned by Ack and Flush after Close.
var ErrSaverClosed = errors.New("checkpoint saver closed")

// Saver coalesces a stream of acknowledged positions into at most one
// store write per interval, done in the background: Ack only records the
// position and never waits for an fsync or a Redis round trip.
//
// Guarantees: at most one save is in flight; each save writes the newest
// position acked so far, so a saved position is never older than one saved
// before; the first ack after a quiet interval is saved at once, later ones
// at most every interval. A failed save is retried with capped backoff
// (a checkpoint store that is down, like a sink that is down, must not stop
// the stream); Err reports the last failure until a save succeeds, so the
// caller can log it and readiness can show it.
//
// Crash safety: a crash loses at most the acks of the last interval (plus
// one save in flight) from the store. The source then resumes from the
// older checkpoint and delivers those changes again; the sinks apply them
// idempotently, so the cost is replay, never loss.
type Saver struct {
	store    Store
	interval time.Duration
	timeout  time.Duration

	sem chan struct{} // held by whoever calls store.Save: one save at a time
	wg  sync.WaitGroup

	mu       sync.Mutex
	acked    Position // newest acked position
	ackedSeq uint64   // bumps at every Ack
	saved    Position // newest position the store has
	savedSeq uint64
	lastSave time.Time   // start of the last save
	timer    *time.Timer // scheduled background save, nil if none
	err      error       // last save error; nil after a successful save
	failures int         // consecutive failed saves, for the retry backoff
	closed   bool

	saveFailures *metrics.Counter // nil (no-op) unless Instrument was called
}

var _ metrics.Instrumented = (*Saver)(nil)

// Instrument registers rowsync_checkpoint_save_failures_total on m. Call
// it before the first Ack.
func (s *Saver) Instrument(m *metrics.Metrics) {
	s.saveFailures = m.Counter("rowsync_checkpoint_save_failures_total",
		"Checkpoint saves that failed (retried with backoff; the stream goes on).", nil)
}

// NewSaver returns a Saver writing to store at most every interval (0 or
// less: every ack, still in the background). saved is what the store holds
// now; Saved returns it until the first save. A nil store only records
// positions (Saved follows the acks).
func NewSaver(store Store, interval time.Duration, saved Position) *Saver {
	return &Saver{store: store, interval: max(0, interval), timeout: DefaultSaveTimeout,
		sem: make(chan struct{}, 1), acked: saved, saved: saved}
}

// Ack records p, newer than every position acked before, as the position
// to save. It does no I/O and does not fail while saves are retried.
func (s *Saver) Ack(p Position) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrSaverClosed
	}
	if p == s.acked {
		return nil
	}
	s.acked = p
	s.ackedSeq++
	s.schedule()
	return nil
}

// schedule arms the background save unless one is armed, a save is
// running (it re-arms when done) or saving stopped. Called with mu held.
func (s *Saver) schedule() {
	if s.timer != nil || s.closed || s.ackedSeq == s.savedSeq {
		return
	}
	wait := max(0, s.interval-time.Since(s.lastSave))
	if s.failures > 0 {
		wait = max(wait, saveRetry.Delay(s.failures)-time.Since(s.lastSave))
	}
	s.wg.Add(1)
	s.timer = time.AfterFunc(wait, s.tick)
}

// tick runs the background save, unless a Flush is saving already (it
// re-arms the timer when done).
func (s *Saver) tick() {
	defer s.wg.Done()
	s.mu.Lock()
	s.timer = nil
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return
	}
	select {
	case s.sem <- struct{}{}:
	default:
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	_ = s.saveNewest(ctx) // a failure is kept in s.err and retried
	cancel()
	s.release()
}

// release gives the save slot back and arms the next save if acks came
// in meanwhile.
func (s *Saver) release() {
	<-s.sem
	s.mu.Lock()
	s.schedule()
	s.mu.Unlock()
}

// saveNewest writes the newest acked position if the store lacks it. The
// caller holds sem.
func (s *Saver) saveNewest(ctx context.Context) error {
	s.mu.Lock()
	if s.ackedSeq == s.savedSeq {
		s.mu.Unlock()
		return nil
	}
	p, seq := s.acked, s.ackedSeq
	s.lastSave = time.Now()
	s.mu.Unlock()

	var err error
	if s.store != nil {
		err = s.store.Save(ctx, p)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.err = fmt.Errorf("save checkpoint %s: %w", p, err)
		s.failures++
		s.saveFailures.Inc()
		return s.err
	}
	s.saved, s.savedSeq = p, seq
	s.err, s.failures = nil, 0
	return nil
}

// Flush saves the newest acked position now, after any save in flight,
// and returns when the store has it, or that save's error.
func (s *Saver) Flush(ctx context.Context) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return ErrSaverClosed
	}
	return s.flush(ctx)
}

func (s *Saver) flush(ctx context.Context) error {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	err := s.saveNewest(ctx)
	s.release()
	return err
}

// Close stops background saving and saves the newest acked position. It
// waits for a save in flight. It does not close the store. Calling it
// again returns the last save error, if any.
func (s *Saver) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		err := s.err
		s.mu.Unlock()
		return err
	}
	s.closed = true
	if s.timer != nil && s.timer.Stop() {
		s.timer = nil
		s.wg.Done()
	}
	s.mu.Unlock()
	err := s.flush(ctx)
	s.wg.Wait()
	return err
}

// Saved returns the newest position the store holds (as far as this Saver
// wrote it).
func (s *Saver) Saved() Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saved
}

// Err returns the error of the last save if it failed, or nil.
func (s *Saver) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Acked returns the newest acked position, saved or not.
func (s *Saver) Acked() Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked
}

// saveRetry spaces the retries of a failing store: 100ms doubling up to
// 10s, with jitter.
var saveRetry = backoff.Policy{Min: 100 * time.Millisecond, Max: 10 * time.Second}
