// Package sourcetest checks a cdc.Source against the memory part of
// cdc.Batch's contract: a batch's events stay as they were handed out
// until the batch is acked, however many later batches the source
// decodes meanwhile (into rows it recycled from batches acked
// before, cdc.RowPool).
package sourcetest

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/rowsync/rowsync/cdc"
)

// Held reads batches from src until they hold n events, as a pipeline
// with a window of hold batches does, but acks late: batch i is acked
// (with nil, from another goroutine, as the pipeline's acker does) only
// once batch i+hold has been read, and only after checking that its
// events still equal the copy taken when Next returned them. A source
// that reuses a batch's memory before its ack fails that check, or the
// race detector reports the reuse. It returns the copies, in order.
func Held(ctx context.Context, t testing.TB, src cdc.Source, n, hold int) []cdc.Event {
	t.Helper()
	type held struct {
		seq  int
		b    cdc.Batch
		copy []cdc.Event
	}
	toAck := make(chan held)
	acked := make(chan error, 1)
	go func() {
		var first error
		for h := range toAck {
			if first == nil && !SameEvents(h.b.Events, h.copy) {
				first = fmt.Errorf("batch %d changed before its ack:\n now %+v\nread %+v", h.seq, h.b.Events, h.copy)
			}
			if err := h.b.Ack(ctx, nil); err != nil && first == nil {
				first = fmt.Errorf("ack batch %d: %w", h.seq, err)
			}
		}
		acked <- first
	}()
	var (
		out    []cdc.Event
		window []held
		err    error
	)
	for seq := 0; len(out) < n; seq++ {
		var b cdc.Batch
		if b, err = src.Next(ctx); err != nil {
			err = fmt.Errorf("next after %d/%d events: %w", len(out), n, err)
			break
		}
		c := cdc.CloneEvents(b.Events)
		out = append(out, c...)
		window = append(window, held{seq, b, c})
		if len(window) > hold {
			toAck <- window[0]
			window = window[1:]
		}
	}
	for _, h := range window {
		toAck <- h
	}
	close(toAck)
	if aerr := <-acked; aerr != nil {
		t.Fatal(aerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// SameEvent reports whether a and b are the same change: every field
// equal as reflect.DeepEqual compares it, the row images as cdc.Row.Equal
// does (whatever their layouts, column order and pooling).
func SameEvent(a, b cdc.Event) bool {
	if !a.Before.Equal(b.Before) || !a.After.Equal(b.After) {
		return false
	}
	a.Before, a.After, b.Before, b.After = nil, nil, nil, nil
	return reflect.DeepEqual(a, b)
}

// SameEvents is SameEvent for every event of two lists, one for one.
func SameEvents(a, b []cdc.Event) bool {
	return slices.EqualFunc(a, b, SameEvent)
}
