package binlog

import (
	"slices"
	"testing"

	"github.com/rowsync/rowsync/cdc"
)

// TestEventLists: cur grows by doubling up to a full batch in one step
// (past it, for a compressed transaction taken whole, it doubles on), and
// the lists of acked batches are taken again, emptied, at most
// maxFreeEvents of them and none past a full batch.
func TestEventLists(t *testing.T) {
	s := &Source{cfg: Config{BatchSize: 100}}
	const full = 100 + 100/16
	s.cur = s.eventList(10)
	var caps []int
	for range 200 {
		if len(s.cur) == cap(s.cur) {
			s.growEvents()
			caps = append(caps, cap(s.cur))
		}
		s.cur = append(s.cur, cdc.Event{Table: "t"})
	}
	if want := []int{20, 40, 80, full, 2 * full}; !slices.Equal(caps, want) {
		t.Fatalf("capacities %v, want %v", caps, want)
	}
	s.freeEventList(s.cur) // past a full batch: not kept
	var acked [][]cdc.Event
	for range maxFreeEvents + 1 {
		l := append(make([]cdc.Event, 0, full), cdc.Event{Table: "x"})
		acked = append(acked, l)
		s.freeEventList(l)
	}
	if len(s.freeEvents) != maxFreeEvents {
		t.Fatalf("%d lists kept, want %d", len(s.freeEvents), maxFreeEvents)
	}
	l := s.eventList(50)
	if len(l) != 0 || cap(l) != full || &l[:1][0] != &acked[maxFreeEvents-1][0] {
		t.Fatalf("eventList(50): len %d cap %d, not the last list kept", len(l), cap(l))
	}
	if l := s.eventList(full + 1); cap(l) != full+1 || len(s.freeEvents) != maxFreeEvents-1 {
		t.Fatalf("eventList past the lists kept: cap %d, %d lists left", cap(l), len(s.freeEvents))
	}
}
