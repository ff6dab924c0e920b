// Package batch holds the one rule by which every source closes a batch:
// when it holds Size items, or MaxWait after its first item arrived,
// whichever comes first. Until the first item a batch waits as long as the
// caller's context allows: an idle source costs no wake-ups.
//
// A Window is the rule's state for one batch at a time; it is not safe for
// concurrent use (each source fills its batches on one goroutine).
package batch

import "time"

// Window tracks the batch being filled.
type Window struct {
	size    int
	maxWait time.Duration
	n       int
	timer   *time.Timer
	armed   bool
	opened  time.Time
}

// NewWindow returns a Window for batches of at most size items (at least
// 1) that close maxWait after their first item.
func NewWindow(size int, maxWait time.Duration) *Window {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &Window{size: max(size, 1), maxWait: maxWait, timer: t}
}

// Size is the most items a batch holds.
func (w *Window) Size() int { return w.size }

// Len is how many items the current batch holds.
func (w *Window) Len() int { return w.n }

// Room is how many more items fit in the current batch.
func (w *Window) Room() int { return w.size - w.n }

// Add records n items in the current batch and reports whether it is
// full. The first items of a batch start its MaxWait clock.
func (w *Window) Add(n int) (full bool) {
	if n > 0 && !w.armed {
		w.armed = true
		w.opened = time.Now()
		w.timer.Reset(w.maxWait)
	}
	w.n += n
	return w.n >= w.size
}

// Full reports whether the current batch holds Size items.
func (w *Window) Full() bool { return w.n >= w.size }

// C fires when the current batch's MaxWait has passed. It is nil before
// the batch's first item, so a select on it blocks until then.
func (w *Window) C() <-chan time.Time {
	if !w.armed {
		return nil
	}
	return w.timer.C
}

// Deadline is when the current batch closes by MaxWait; zero before its
// first item. For waits that take a deadline rather than a channel.
func (w *Window) Deadline() time.Time {
	if !w.armed {
		return time.Time{}
	}
	return w.opened.Add(w.maxWait)
}

// Reset closes the current batch: the next Add starts a new one.
func (w *Window) Reset() {
	if w.armed {
		w.timer.Stop()
	}
	w.n, w.armed, w.opened = 0, false, time.Time{}
}
