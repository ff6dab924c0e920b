package kafka

import "testing"

func TestWatermark(t *testing.T) {
	// Spans [10,20) [20,25) [25,40) [40,41) handed out in order.
	ends := []int64{20, 25, 40, 41}
	for _, tc := range []struct {
		name string
		acks []int   // ticket index per step
		want []int64 // commit point after each step
	}{
		{"in order", []int{0, 1, 2, 3}, []int64{20, 25, 40, 41}},
		{"reverse", []int{3, 2, 1, 0}, []int64{10, 10, 10, 41}},
		{"hole in the middle", []int{0, 2, 3, 1}, []int64{20, 20, 20, 41}},
		{"double ack", []int{1, 1, 0, 0, 3, 2}, []int64{10, 10, 25, 25, 25, 41}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWatermark(10)
			var tickets []uint64
			for _, e := range ends {
				tk, ok := w.add(e)
				if !ok {
					t.Fatalf("add(%d) refused", e)
				}
				tickets = append(tickets, tk)
			}
			for i, a := range tc.acks {
				w.ack(tickets[a])
				if w.next != tc.want[i] {
					t.Fatalf("after acking %v: next %d, want %d", tc.acks[:i+1], w.next, tc.want[i])
				}
			}
			if w.pending() != 0 {
				t.Errorf("pending %d after all acks", w.pending())
			}
		})
	}
}

func TestWatermarkRefusesOutOfOrderSpans(t *testing.T) {
	w := newWatermark(0)
	if _, ok := w.add(5); !ok {
		t.Fatal("add(5) refused")
	}
	for _, e := range []int64{5, 3} {
		if _, ok := w.add(e); ok {
			t.Errorf("add(%d) after 5 accepted", e)
		}
	}
	w.ack(99) // unknown ticket: ignored
	if w.next != 0 || w.pending() != 1 {
		t.Errorf("next %d pending %d", w.next, w.pending())
	}
}

// TestWatermarkInterleaved adds and acks while spans are pending, the way
// batches flow through a pipeline with several in flight.
func TestWatermarkInterleaved(t *testing.T) {
	w := newWatermark(0)
	var open []uint64
	var end int64
	for i := range 1000 {
		end += int64(1 + i%7)
		tk, _ := w.add(end)
		open = append(open, tk)
		if len(open) == 4 { // ack the second oldest first, then the oldest
			w.ack(open[1])
			w.ack(open[0])
			open = open[2:]
		}
	}
	for i := len(open) - 1; i >= 0; i-- {
		w.ack(open[i])
	}
	if w.next != end || w.pending() != 0 {
		t.Errorf("next %d want %d, pending %d", w.next, end, w.pending())
	}
}
