package batch

import (
	"testing"
	"time"
)

func TestWindowClosesOnSize(t *testing.T) {
	w := NewWindow(5, time.Hour)
	if w.C() != nil || !w.Deadline().IsZero() {
		t.Fatal("an empty batch has a max-wait clock")
	}
	if w.Add(0) || w.C() != nil {
		t.Fatal("adding nothing started the batch")
	}
	if w.Add(3) || w.Full() || w.Room() != 2 || w.Len() != 3 {
		t.Fatalf("3 of 5: full=%v room=%d len=%d", w.Full(), w.Room(), w.Len())
	}
	if w.C() == nil || w.Deadline().IsZero() {
		t.Fatal("the first item did not start the clock")
	}
	if !w.Add(2) || !w.Full() || w.Room() != 0 {
		t.Fatal("5 of 5 not full")
	}
	w.Reset()
	if w.Len() != 0 || w.C() != nil || w.Full() {
		t.Fatal("Reset left the batch open")
	}
	if NewWindow(0, time.Second).Size() != 1 {
		t.Fatal("size below 1 not raised to 1")
	}
}

// TestWindowClosesOnMaxWait waits on the channel itself (no timing
// assertion): it fires once the batch has items, and a reset batch's
// clock starts again with its first item.
func TestWindowClosesOnMaxWait(t *testing.T) {
	w := NewWindow(100, time.Millisecond)
	for round := range 3 {
		w.Add(1)
		select {
		case <-w.C():
		case <-time.After(3 * time.Minute):
			t.Fatalf("round %d: max wait never fired", round)
		}
		if w.Full() {
			t.Fatalf("round %d: closed by size", round)
		}
		w.Reset()
	}
	// A reset before the clock fired leaves nothing stale behind.
	w = NewWindow(100, time.Hour)
	w.Add(1)
	w.Reset()
	w.Add(1)
	select {
	case <-w.C():
		t.Fatal("a stale max-wait fired for a new batch")
	default:
	}
}
