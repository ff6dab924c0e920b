package rabbitmq_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/source/decode"
	"github.com/rowsync/rowsync/source/rabbitmq"
)

// versionDecoder is idDecoder with a version: the id, as a format that
// carries binlog positions would give.
type versionDecoder struct{ idDecoder }

func (d versionDecoder) Decode(msg decode.Message) ([]cdc.Event, error) {
	evs, err := d.idDecoder.Decode(msg)
	for i := range evs {
		evs[i].Pos.Version = uint64(evs[i].After.Get("id").(int64))
	}
	return evs, err
}

func newSourceWith(t testing.TB, cfg rabbitmq.Config, dec decode.Decoder) *rabbitmq.Source {
	t.Helper()
	cfg.URL = brokerURL
	cfg.Reconnect = rabbitmq.Backoff{Min: 20 * time.Millisecond, Max: time.Second}
	src, err := rabbitmq.New(cfg, dec, slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo})))
	if err != nil {
		t.Fatalf("new source: %v", err)
	}
	t.Cleanup(func() { closeSource(t, src) })
	return src
}

// consumers returns how many consumers the broker has on queue.
func (b *broker) consumers(queue string) int {
	b.t.Helper()
	ch, err := b.conn.Channel()
	if err != nil {
		b.t.Fatalf("channel: %v", err)
	}
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(queue, false, false, false, false, nil)
	if err != nil {
		b.t.Fatalf("inspect %s: %v", queue, err)
	}
	return q.Consumers
}

// TestConsumers reads one queue with three consumers: the broker deals
// the messages out to all three, nothing is acked before Batch.Ack (held
// batches go back to the queue on Close), every message arrives, a failed
// batch comes again, and with every batch acked the queue ends empty.
func TestConsumers(t *testing.T) {
	const n = 3000
	br := newBroker(t)
	q := uniqueName(t)
	br.queue(q, nil)
	br.publishRange(q, 1, n)
	cfg := rabbitmq.Config{Queue: q, Consumers: 3, BatchSize: 50, Prefetch: n}

	// Hold everything: no ack may reach the broker.
	held := newSourceWith(t, cfg, versionDecoder{})
	var got []int
	for len(got) < n {
		got = append(got, ids(next(t, held))...)
	}
	if c := br.consumers(q); c != 3 {
		t.Errorf("%d consumers on the queue, want 3", c)
	}
	if slices.Sort(got); !slices.Equal(got, seq(1, n)) {
		t.Fatalf("held batches are not every message once: %d events", len(got))
	}
	if held.AckFrames() != 0 || br.ready(q) != 0 {
		t.Fatalf("%d ack frames, %d ready while every batch is held", held.AckFrames(), br.ready(q))
	}
	closeSource(t, held)
	eventually(t, "held messages requeued", func() bool { return br.ready(q) == n })

	src := newSourceWith(t, cfg, versionDecoder{})
	got = got[:0]
	failed := false
	for len(firstSeen(got)) < n {
		b := next(t, src)
		if !failed && len(got) > n/3 {
			// A sink error: this batch's consumer recycles its channel
			// and the broker redelivers what it held, in its order.
			failed = true
			ack(t, b, errors.New("sink down"))
			continue
		}
		got = append(got, ids(b)...)
		ack(t, b, nil)
	}
	fs := firstSeen(got)
	if slices.Sort(fs); !slices.Equal(fs, seq(1, n)) {
		t.Fatalf("lost messages: %d of %d", len(fs), n)
	}
	if !failed {
		t.Fatal("no batch failed")
	}
	closeSource(t, src)
	if r := br.ready(q); r != 0 {
		t.Fatalf("%d messages left after acking all", r)
	}
}

// TestConsumersNeedVersions: several ordered consumers stop on an event
// without a version (the sinks' guard could not order it), naming the
// keys to change, and ack nothing; unordered: true reads the same queue.
func TestConsumersNeedVersions(t *testing.T) {
	const n = 200
	br := newBroker(t)
	q := uniqueName(t)
	br.queue(q, nil)
	br.publishRange(q, 1, n)

	src := newSourceWith(t, rabbitmq.Config{Queue: q, Consumers: 2}, idDecoder{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var err error
	for err == nil {
		var b cdc.Batch
		if b, err = src.Next(ctx); err == nil {
			t.Fatalf("got a batch of %d unversioned events", len(b.Events))
		}
	}
	for _, w := range []string{"consumers: 2", "carries no binlog position", "unordered: true"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not name %q", err, w)
		}
	}
	closeSource(t, src)
	eventually(t, "nothing acked", func() bool { return br.ready(q) == n })

	unordered := newSourceWith(t, rabbitmq.Config{Queue: q, Consumers: 2, Unordered: true}, idDecoder{})
	got := drainAcked(t, unordered, n, nil)
	if fs := firstSeen(got); len(fs) != n {
		t.Fatalf("%d of %d messages", len(fs), n)
	}
}
