package kafka

// watermark tracks, for one partition, the spans of offsets handed out to
// the pipeline and which of them are acked, and yields the commit point:
// the offset below which every handed-out message is acked. It never moves
// over a span that is not acked, whatever order acks come in.
//
// Spans are added in offset order (one fetcher per partition, one hand-out
// queue), so a span is identified by its ticket, the count of spans added
// before it. A watermark is not safe for concurrent use; partState locks it.
type watermark struct {
	next  int64  // commit point: every handed-out offset below it is acked
	first uint64 // ticket of spans[0]
	spans []span // handed out, not yet below next, in offset order
	last  int64  // end of the newest span (or the start offset)
}

type span struct {
	end  int64 // last offset of the span + 1
	done bool
}

// newWatermark starts a watermark at the partition's start offset.
func newWatermark(start int64) watermark {
	return watermark{next: start, last: start}
}

// add records a handed-out span that ends (exclusive) at end and returns
// its ticket. ok is false if end does not lie past the previous span: the
// caller handed spans out of order, which would make the commit point lie.
func (w *watermark) add(end int64) (ticket uint64, ok bool) {
	if end <= w.last {
		return 0, false
	}
	w.last = end
	ticket = w.first + uint64(len(w.spans))
	w.spans = append(w.spans, span{end: end})
	return ticket, true
}

// ack marks the span with ticket done and advances the commit point over
// every leading done span. Unknown or already-committed tickets are ignored.
func (w *watermark) ack(ticket uint64) {
	if ticket < w.first || ticket-w.first >= uint64(len(w.spans)) {
		return
	}
	w.spans[ticket-w.first].done = true
	n := 0
	for n < len(w.spans) && w.spans[n].done {
		w.next = w.spans[n].end
		n++
	}
	if n == 0 {
		return
	}
	w.first += uint64(n)
	// Shift down rather than reslice so the backing array is reused.
	m := copy(w.spans, w.spans[n:])
	clear(w.spans[m:])
	w.spans = w.spans[:m]
}

// pending returns how many handed-out spans are not yet below the commit
// point (acked or not).
func (w *watermark) pending() int { return len(w.spans) }
