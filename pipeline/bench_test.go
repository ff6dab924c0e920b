package pipeline

import (
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/deadletter"
)

// countSink only counts: the pipeline's own cost per event is what is left.
type countSink struct{ n atomic.Int64 }

func (s *countSink) Apply(_ context.Context, evs []cdc.Event) error {
	s.n.Add(int64(len(evs)))
	return nil
}
func (s *countSink) Close(context.Context) error { return nil }

// BenchmarkDispatch runs batches of 4,096 updates of 10-column rows (a
// drain's batches) through a pipeline of two workers into a sink that only
// counts: sharding, merging, the in-flight window and the ordered acks.
// cpu-µs/event is the process's CPU (GC included) per event.
//
//	go test -run '^$' -bench Dispatch -benchmem ./pipeline/
func BenchmarkDispatch(b *testing.B) {
	const perBatch = 4096
	cols := []string{"id", "user_id", "sku", "qty", "price", "discount", "status", "note", "created_at", "updated_at"}
	mk := func(n int) []cdc.Event {
		evs := make([]cdc.Event, n)
		for i := range evs {
			r := new(cdc.Row)
			for j, c := range cols {
				r.Set(c, int64(i*10+j))
			}
			evs[i] = cdc.Event{DB: "shop", Table: "items", Op: cdc.Update, PK: []string{"id"}, Before: r, After: r}
		}
		return evs
	}
	proto := mk(perBatch)
	nb := b.N/perBatch + 1
	batches := make([][]cdc.Event, nb)
	for i := range batches {
		batches[i] = append([]cdc.Event(nil), proto...)
	}
	src := newSliceSource(batches)
	sink := &countSink{}
	p, err := New(src, []Route{{Name: "bench", Sink: sink}}, Options{Workers: 2, DeadLetter: &deadletter.Memory{}})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	b.ResetTimer()
	cpu0 := processCPU()
	start := time.Now()
	go func() { done <- p.Run(ctx) }()
	<-src.drained
	elapsed := time.Since(start)
	cpu := processCPU() - cpu0
	cancel()
	<-done
	n := float64(nb * perBatch)
	b.ReportMetric(n/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(cpu)/n/1e3, "cpu-µs/event")
}

// processCPU is the process's user+system CPU time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPerEvent is the read loop's own work per event, on one
// goroutine so that instruction counts (cachegrind) are stable: the
// in-flight size estimate, the key-change check and the shard hash of
// batches of 4,096 updates of 10-column rows (ints and strings).
//
//	go test -run '^$' -bench PerEvent -benchmem ./pipeline/
func BenchmarkPerEvent(b *testing.B) {
	const perBatch = 4096
	cols := []string{"id", "user_id", "sku", "qty", "price", "discount", "status", "note", "created_at", "updated_at"}
	evs := make([]cdc.Event, perBatch)
	for i := range evs {
		before, after := new(cdc.Row), new(cdc.Row)
		for j, c := range cols {
			if j%2 == 0 {
				before.Set(c, int64(i*10+j))
				after.Set(c, int64(i*10+j))
			} else {
				before.Set(c, fmt.Sprintf("value-%d", i*10+j))
				after.Set(c, fmt.Sprintf("value-%d", i*10+j+1))
			}
		}
		evs[i] = cdc.Event{DB: "shop", Table: "items", Op: cdc.Update, PK: []string{"id"}, Before: before, After: after}
	}
	p, err := New(newSliceSource(nil), []Route{{Name: "bench", Sink: &countSink{}}}, Options{Workers: 2, DeadLetter: &deadletter.Memory{}})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var bytes int64
	var sharded int
	for n := 0; n < b.N; {
		batch := evs[:min(perBatch, b.N-n)]
		bytes += batchBytes(batch)
		for i := range batch {
			if !keyChanged(&batch[i]) {
				sharded += p.shard(&batch[i], 2)
			}
		}
		n += len(batch)
	}
	if bytes == 0 || sharded < 0 {
		b.Fatal("nothing estimated")
	}
}
