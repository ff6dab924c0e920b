package rabbitmq_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/goleak"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/source/decode"
	"github.com/rowsync/rowsync/source/rabbitmq"
)

var long = flag.Bool("long", os.Getenv("ROWSYNC_LONG") == "1", "run the long soak (broker restart)")

const brokerURL = "amqp://guest:guest@127.0.0.1:5672/"

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// idDecoder is the tests' format: each body is one event whose id is the
// body. "POISON" is undecodable; "PANIC" panics.
type idDecoder struct{}

func (idDecoder) Decode(msg decode.Message) ([]cdc.Event, error) {
	switch string(msg.Value) {
	case "POISON":
		return nil, errors.New("poisoned body")
	case "PANIC":
		panic("decoder exploded")
	}
	n, err := strconv.ParseInt(string(msg.Value), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("body %q: %w", msg.Value, err)
	}
	return []cdc.Event{{
		DB: "test", Table: "t", Op: cdc.Insert, PK: []string{"id"},
		After: cdc.RowOf("id", n),
	}}, nil
}

func uniqueName(t testing.TB) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := strings.NewReplacer("/", "-", " ", "_").Replace(t.Name())
	return "rowsync-test-" + name + "-" + hex.EncodeToString(b[:])
}

// broker is a test's own admin connection to declare, publish and inspect.
type broker struct {
	t    testing.TB
	conn *amqp.Connection
	ch   *amqp.Channel
}

func newBroker(t testing.TB) *broker {
	t.Helper()
	conn, err := amqp.Dial(brokerURL)
	if err != nil {
		t.Fatalf("dial broker: %v", err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("channel: %v", err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatalf("confirm: %v", err)
	}
	b := &broker{t: t, conn: conn, ch: ch}
	t.Cleanup(func() { conn.Close() })
	return b
}

// queue declares a durable queue deleted when the test ends.
func (b *broker) queue(name string, args amqp.Table) {
	b.t.Helper()
	if _, err := b.ch.QueueDeclare(name, true, false, false, false, args); err != nil {
		b.t.Fatalf("declare %s: %v", name, err)
	}
	b.deleteAtEnd(name)
}

func (b *broker) deleteAtEnd(name string) {
	b.t.Cleanup(func() {
		conn, err := amqp.Dial(brokerURL)
		if err != nil {
			b.t.Logf("cleanup dial: %v", err)
			return
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err != nil {
			return
		}
		_, _ = ch.QueueDelete(name, false, false, false)
	})
}

func (b *broker) exchange(name, kind string) {
	b.t.Helper()
	if err := b.ch.ExchangeDeclare(name, kind, false, false, false, false, nil); err != nil {
		b.t.Fatalf("declare exchange %s: %v", name, err)
	}
	b.t.Cleanup(func() {
		conn, err := amqp.Dial(brokerURL)
		if err != nil {
			return
		}
		defer conn.Close()
		if ch, err := conn.Channel(); err == nil {
			_ = ch.ExchangeDelete(name, false, false)
		}
	})
}

// publish sends bodies through the default exchange to queue, persistent,
// and waits for the broker's confirms.
func (b *broker) publish(queue string, bodies ...string) {
	b.t.Helper()
	b.publishTo("", queue, bodies...)
}

func (b *broker) publishTo(exchange, key string, bodies ...string) {
	b.t.Helper()
	ctx := context.Background()
	confirms := make([]*amqp.DeferredConfirmation, 0, len(bodies))
	for _, body := range bodies {
		c, err := b.ch.PublishWithDeferredConfirmWithContext(ctx, exchange, key, false, false, amqp.Publishing{
			DeliveryMode: amqp.Persistent,
			Body:         []byte(body),
		})
		if err != nil {
			b.t.Fatalf("publish: %v", err)
		}
		confirms = append(confirms, c)
	}
	for _, c := range confirms {
		if ok, err := c.WaitContext(ctx); err != nil || !ok {
			b.t.Fatalf("publish not confirmed: %v", err)
		}
	}
}

func (b *broker) publishRange(queue string, from, to int) {
	b.t.Helper()
	var bodies []string
	for i := from; i <= to; i++ {
		bodies = append(bodies, strconv.Itoa(i))
	}
	b.publish(queue, bodies...)
}

// ready returns the number of ready (not unacked) messages in queue.
func (b *broker) ready(queue string) int {
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
	return q.Messages
}

// eventually polls cond until it holds, for at most a generous minute.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func newSource(t testing.TB, cfg rabbitmq.Config) *rabbitmq.Source {
	t.Helper()
	if cfg.URL == "" {
		cfg.URL = brokerURL
	}
	if cfg.Reconnect.Min == 0 {
		cfg.Reconnect = rabbitmq.Backoff{Min: 20 * time.Millisecond, Max: time.Second}
	}
	src, err := rabbitmq.New(cfg, idDecoder{}, slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatalf("new source: %v", err)
	}
	t.Cleanup(func() { closeSource(t, src) })
	return src
}

func closeSource(t testing.TB, src *rabbitmq.Source) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := src.Close(ctx); err != nil {
		t.Errorf("close: %v", err)
	}
}

func next(t testing.TB, src *rabbitmq.Source) cdc.Batch {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, err := src.Next(ctx)
	if err != nil {
		t.Fatalf("next: %v", err)
	}
	return b
}

func ack(t testing.TB, b cdc.Batch, err error) {
	t.Helper()
	if aerr := b.Ack(context.Background(), err); aerr != nil {
		t.Fatalf("ack: %v", aerr)
	}
}

func ids(b cdc.Batch) []int {
	out := make([]int, 0, len(b.Events))
	for _, e := range b.Events {
		out = append(out, int(e.After.Get("id").(int64)))
	}
	return out
}

func seq(from, to int) []int {
	var s []int
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

// firstSeen drops repeats, keeping first occurrences in order.
func firstSeen(got []int) []int {
	seen := map[int]bool{}
	var out []int
	for _, id := range got {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// drainAcked reads and acks batches until every id in 1..n was seen.
func drainAcked(t testing.TB, src *rabbitmq.Source, n int, got []int) []int {
	t.Helper()
	for len(firstSeen(got)) < n {
		b := next(t, src)
		got = append(got, ids(b)...)
		ack(t, b, nil)
	}
	return got
}

func TestOrderAndMultipleAck(t *testing.T) {
	const n = 3000
	br := newBroker(t)
	q := uniqueName(t)
	br.queue(q, nil)
	br.publishRange(q, 1, n)

	src := newSource(t, rabbitmq.Config{Queue: q, BatchSize: 100, MaxWait: 50 * time.Millisecond})
	var got []int
	batches := 0
	for len(got) < n {
		b := next(t, src)
		if len(b.Events) == 0 || len(b.Events) > 100 {
			t.Fatalf("batch of %d events, want 1..100", len(b.Events))
		}
		for _, e := range b.Events {
			if !strings.HasPrefix(e.Pos.Text, q+"@") {
				t.Fatalf("pos %q, want %s@<tag>", e.Pos.Text, q)
			}
		}
		got = append(got, ids(b)...)
		ack(t, b, nil)
		batches++
	}
	if !slices.Equal(got, seq(1, n)) {
		t.Fatalf("events out of order or duplicated: first %v", got[:min(20, len(got))])
	}
	if f := src.AckFrames(); f != int64(batches) {
		t.Errorf("%d ack frames for %d batches, want one multiple-ack per batch", f, batches)
	}
	closeSource(t, src)
	// Close requeues anything unacked; nothing may be left.
	if r := br.ready(q); r != 0 {
		t.Fatalf("%d messages left after acking all", r)
	}
}

func TestNothingAckedBeforeAck(t *testing.T) {
	const n = 500
	br := newBroker(t)
	q := uniqueName(t)
	br.queue(q, nil)
	br.publishRange(q, 1, n)

	// Prefetch lets the source hold every message unacked.
	first := newSource(t, rabbitmq.Config{Queue: q, BatchSize: 64, Prefetch: n})
	var got []int
	for len(got) < n {
		got = append(got, ids(next(t, first))...) // never acked
	}
	if br.ready(q) != 0 {
		t.Fatalf("messages still ready while the source holds them all")
	}
	closeSource(t, first)
	eventually(t, "unacked messages requeued", func() bool { return br.ready(q) == n })

	second := newSource(t, rabbitmq.Config{Queue: q, BatchSize: 64})
	got = drainAcked(t, second, n, nil)
	if !slices.Equal(got, seq(1, n)) {
		t.Fatalf("redelivery out of order: %v", got[:min(20, len(got))])
	}
	closeSource(t, second)
	if r := br.ready(q); r != 0 {
		t.Fatalf("%d messages left", r)
	}
}

func TestPoisonMessage(t *testing.T) {
	br := newBroker(t)
	q := uniqueName(t)
	br.queue(q, nil)
	br.publish(q, "1", "2", "POISON", "3", "PANIC", "4")

	src := newSource(t, rabbitmq.Config{Queue: q})
	var (
		got     []int
		rejects []cdc.Reject
	)
	for len(got)+len(rejects) < 6 {
		b := next(t, src)
		got = append(got, ids(b)...)
		rejects = append(rejects, b.Rejects...)
	}
	if !slices.Equal(got, []int{1, 2, 3, 4}) {
		t.Fatalf("events %v", got)
	}
	want := []struct{ pos, raw, reason string }{
		{q + "@3", "POISON", "poisoned body"},
		{q + "@5", "PANIC", "decoder panic: decoder exploded"},
	}
	if len(rejects) != len(want) {
		t.Fatalf("%d rejects, want %d", len(rejects), len(want))
	}
	for i, w := range want {
		r := rejects[i]
		if r.Pos.Text != w.pos || string(r.Raw) != w.raw || !strings.Contains(r.Reason.Error(), w.reason) {
			t.Errorf("reject %d = {%s %q %v}, want {%s %q %s}", i, r.Pos.Text, r.Raw, r.Reason, w.pos, w.raw, w.reason)
		}
	}
	// Not acked yet: the poison messages are still held, not dropped.
	closeSource(t, src)
	eventually(t, "requeue", func() bool { return br.ready(q) == 6 })

	src = newSource(t, rabbitmq.Config{Queue: q})
	n := 0
	for n < 6 {
		b := next(t, src)
		n += len(b.Events) + len(b.Rejects)
		ack(t, b, nil) // the pipeline wrote the rejects to the dead letter
	}
	closeSource(t, src)
	if r := br.ready(q); r != 0 {
		t.Fatalf("%d messages left after acking rejects", r)
	}
}

func TestRejectToDLX(t *testing.T) {
	br := newBroker(t)
	q, dlx, dlq := uniqueName(t), uniqueName(t)+"-dlx", uniqueName(t)+"-dlq"
	br.exchange(dlx, "fanout")
	br.queue(dlq, nil)
	if err := br.ch.QueueBind(dlq, "", dlx, false, nil); err != nil {
		t.Fatal(err)
	}
	br.deleteAtEnd(q)

	src := newSource(t, rabbitmq.Config{Queue: q, Declare: true, DeadLetterExchange: dlx, RejectToDLX: true})
	if err := src.Ping(context.Background()); err != nil {
		t.Fatalf("ping: %v", err)
	}
	// Let the source declare the queue before publishing to it.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	_, err := src.Next(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("next on empty queue: %v", err)
	}
	eventually(t, "queue declared", func() bool { return src.Generation() == 1 })
	br.publish(q, "POISON", "1", "POISON", "POISON", "2", "3", "POISON")

	var got []int
	frames := 0
	for len(got) < 3 {
		b := next(t, src)
		if len(b.Rejects) != 0 {
			t.Fatalf("reject_to_dlx returned %d rejects", len(b.Rejects))
		}
		got = append(got, ids(b)...)
		ack(t, b, nil)
		frames++
	}
	// The trailing poison message may come in a batch of its own.
	eventually(t, "4 poison messages dead-lettered", func() bool {
		if br.ready(dlq) == 4 {
			return true
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if b, err := src.Next(ctx); err == nil {
			got = append(got, ids(b)...)
			ack(t, b, nil)
		}
		return false
	})
	if !slices.Equal(got, []int{1, 2, 3}) {
		t.Fatalf("events %v", got)
	}
	closeSource(t, src)
	if r := br.ready(q); r != 0 {
		t.Fatalf("%d messages left in %s", r, q)
	}
	msg, ok, err := br.ch.Get(dlq, true)
	if err != nil || !ok || string(msg.Body) != "POISON" {
		t.Fatalf("dead-lettered message %q %v %v", msg.Body, ok, err)
	}
}

// closeByBroker makes the broker close the source's connection.
func closeByBroker(t *testing.T, src *rabbitmq.Source) {
	t.Helper()
	local, _, ok := src.Conn()
	if !ok {
		t.Fatal("source not connected")
	}
	name := local + " -> 127.0.0.1:5672"
	// rabbitmqctl close_connection takes the connection's Erlang pid.
	var pid string
	eventually(t, "rabbitmqctl list_connections shows "+name, func() bool {
		out, err := exec.Command("rabbitmqctl", "list_connections", "pid", "name", "--no-table-headers", "-q").CombinedOutput()
		if err != nil {
			t.Logf("rabbitmqctl list_connections: %v: %s", err, out)
			return false
		}
		for line := range strings.Lines(string(out)) {
			if p, n, ok := strings.Cut(strings.TrimSpace(line), "\t"); ok && n == name {
				pid = p
				return true
			}
		}
		return false
	})
	if out, err := exec.Command("rabbitmqctl", "close_connection", pid, "rowsync test").CombinedOutput(); err != nil {
		t.Fatalf("rabbitmqctl close_connection: %v: %s", err, out)
	}
}

func closeSocket(t *testing.T, src *rabbitmq.Source) {
	t.Helper()
	_, raw, ok := src.Conn()
	if !ok {
		t.Fatal("source not connected")
	}
	raw.Close()
}

func TestReconnect(t *testing.T) {
	for _, tc := range []struct {
		name string
		kill func(*testing.T, *rabbitmq.Source)
	}{
		{"broker closes connection", closeByBroker},
		{"socket dies", closeSocket},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 2000
			br := newBroker(t)
			q := uniqueName(t)
			br.queue(q, nil)
			br.publishRange(q, 1, n/2)

			src := newSource(t, rabbitmq.Config{Queue: q, BatchSize: 50})
			var got []int
			var held cdc.Batch
			for len(got) < n/4 {
				held = next(t, src)
				got = append(got, ids(held)...)
				if len(got) < n/4 {
					ack(t, held, nil)
				}
			}
			gen := src.Generation()
			tc.kill(t, src)
			// The rest is published while the source reconnects.
			var wg sync.WaitGroup
			wg.Go(func() { br.publishRange(q, n/2+1, n) })
			eventually(t, "reconnect", func() bool { return src.Generation() > gen })
			ack(t, held, nil) // of the dead channel: a no-op, redelivered
			got = drainAcked(t, src, n, got)
			wg.Wait()
			if fs := firstSeen(got); !slices.Equal(fs, seq(1, n)) {
				t.Fatalf("lost or reordered: first %v", fs[:min(20, len(fs))])
			}
			if len(got) == n {
				t.Errorf("no redelivery of the held batch")
			}
			closeSource(t, src)
			if r := br.ready(q); r != 0 {
				t.Fatalf("%d messages left", r)
			}
		})
	}
}

// A batch of a dead channel must not ack tags on the new channel.
func TestStaleAckIsNoop(t *testing.T) {
	const n = 300
	br := newBroker(t)
	q := uniqueName(t)
	br.queue(q, nil)
	br.publishRange(q, 1, n)

	src := newSource(t, rabbitmq.Config{Queue: q, BatchSize: 100, Prefetch: n})
	stale := next(t, src)
	gen := src.Generation()
	closeSocket(t, src)
	eventually(t, "reconnect", func() bool { return src.Generation() > gen })
	// The new channel holds deliveries with the same tags 1..n now.
	fresh := next(t, src)
	// read before the ack: once acked, the source may reuse the batch's
	// rows for later deliveries (cdc.Batch)
	staleIDs := ids(stale)
	ack(t, stale, nil)
	k := min(len(fresh.Events), len(staleIDs))
	if !slices.Equal(ids(fresh)[:k], staleIDs[:k]) {
		t.Fatalf("redelivery starts with %v, want %v", ids(fresh)[:k], staleIDs[:k])
	}
	closeSource(t, src)
	eventually(t, "all requeued", func() bool { return br.ready(q) == n })
}

func TestAckErrorRedelivers(t *testing.T) {
	const n = 400
	br := newBroker(t)
	q := uniqueName(t)
	br.queue(q, nil)
	br.publishRange(q, 1, n)

	src := newSource(t, rabbitmq.Config{Queue: q, BatchSize: 40})
	// ids are read before each ack(nil): once acked, the source may reuse
	// the batch's rows (cdc.Batch)
	first := next(t, src)
	got := ids(first)
	ack(t, first, nil)
	failed := next(t, src)
	later := next(t, src) // in flight when failed fails
	ack(t, failed, errors.New("sink down"))
	got = append(got, ids(failed)...)
	got = append(got, ids(later)...)
	ack(t, later, nil)
	b := next(t, src)
	if ids(b)[0] != ids(failed)[0] {
		t.Fatalf("after a failed ack, next batch starts at %d, want %d", ids(b)[0], ids(failed)[0])
	}
	got = append(got, ids(b)...)
	ack(t, b, nil)
	got = drainAcked(t, src, n, got)
	if fs := firstSeen(got); !slices.Equal(fs, seq(1, n)) {
		t.Fatalf("lost or reordered: %v", fs[:20])
	}
	if err := failed.Ack(context.Background(), nil); err == nil {
		t.Errorf("second ack of a batch succeeded")
	}
	closeSource(t, src)
	if r := br.ready(q); r != 0 {
		t.Fatalf("%d messages left", r)
	}
}

func TestSingleActiveConsumer(t *testing.T) {
	const n = 200
	br := newBroker(t)
	q := uniqueName(t)
	br.deleteAtEnd(q)
	cfg := rabbitmq.Config{Queue: q, Declare: true, SingleActiveConsumer: true, BatchSize: 50}

	active := newSource(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	_, _ = active.Next(ctx)
	cancel()
	eventually(t, "active consumer", func() bool { return active.Generation() == 1 })

	// The argument is on the queue: a plain redeclare clashes with it.
	ch, err := br.conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err == nil || !strings.Contains(err.Error(), "x-single-active-consumer") {
		t.Fatalf("redeclare without the argument: %v", err)
	}

	standby := newSource(t, cfg)
	ctx, cancel = context.WithTimeout(context.Background(), 200*time.Millisecond)
	_, _ = standby.Next(ctx)
	cancel()
	eventually(t, "standby consumer", func() bool { return standby.Generation() == 1 })

	br.publishRange(q, 1, n)
	var got []int
	for len(got) < n/2 {
		b := next(t, active)
		got = append(got, ids(b)...)
		ack(t, b, nil)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 500*time.Millisecond)
	if b, err := standby.Next(ctx); err == nil {
		t.Fatalf("standby consumer got %d events while the active one runs", len(b.Events))
	}
	cancel()
	closeSource(t, active) // the standby takes over, in order
	got = drainAcked(t, standby, n, got)
	if fs := firstSeen(got); !slices.Equal(fs, seq(1, n)) {
		t.Fatalf("lost or reordered across takeover: %v", fs[:20])
	}

	// A source declaring the same queue without the argument fails for good.
	clash := newSource(t, rabbitmq.Config{Queue: q, Declare: true})
	ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := clash.Next(ctx); err == nil || errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "PRECONDITION_FAILED") {
		t.Fatalf("clashing declare: %v", err)
	}
}

func TestDeclareAndBind(t *testing.T) {
	br := newBroker(t)
	q, ex := uniqueName(t), uniqueName(t)+"-ex"
	br.exchange(ex, "direct")
	br.deleteAtEnd(q)

	src := newSource(t, rabbitmq.Config{Queue: q, Declare: true, Exchange: ex, RoutingKeys: []string{"a", "b"}})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	_, _ = src.Next(ctx)
	cancel()
	eventually(t, "queue declared and bound", func() bool { return src.Generation() == 1 })

	br.publishTo(ex, "a", "1")
	br.publishTo(ex, "c", "2") // not bound: dropped by the exchange
	br.publishTo(ex, "b", "3")
	br.publishTo(ex, "a", "4")
	var got []int
	for len(got) < 3 {
		b := next(t, src)
		got = append(got, ids(b)...)
		ack(t, b, nil)
	}
	if !slices.Equal(got, []int{1, 3, 4}) {
		t.Fatalf("got %v, want [1 3 4]", got)
	}
}

func TestFatalErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  rabbitmq.Config
		want string
	}{
		{"missing queue", rabbitmq.Config{Queue: "rowsync-test-no-such-queue"}, "NOT_FOUND"},
		{"bad credentials", rabbitmq.Config{URL: "amqp://guest:wrong@127.0.0.1:5672/", Queue: "x"}, "ACCESS_REFUSED"},
		{"unknown vhost", rabbitmq.Config{URL: "amqp://guest:guest@127.0.0.1:5672/rowsync-no-such-vhost", Queue: "x"}, "vhost"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := newSource(t, tc.cfg)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, err := src.Next(ctx)
			if err == nil || errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("next: %v, want a fatal error", err)
			}
			if !strings.Contains(err.Error(), tc.want) && !strings.Contains(err.Error(), "not allowed") {
				t.Fatalf("next: %v, want %s", err, tc.want)
			}
			if err := src.Ping(ctx); err == nil {
				t.Fatalf("ping succeeded")
			}
		})
	}
}

func TestUnreachableBlocksUntilCancel(t *testing.T) {
	src := newSource(t, rabbitmq.Config{URL: "amqp://guest:guest@127.0.0.1:1/", Queue: "x"})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := src.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("next: %v, want deadline exceeded", err)
	}
	closeSource(t, src)
	if _, err := src.Next(context.Background()); !errors.Is(err, rabbitmq.ErrClosed) {
		t.Fatalf("next after close: %v", err)
	}
}

func TestCloseUnstarted(t *testing.T) {
	src := newSource(t, rabbitmq.Config{Queue: "x"})
	closeSource(t, src)
	if _, err := src.Next(context.Background()); !errors.Is(err, rabbitmq.ErrClosed) {
		t.Fatalf("next after close: %v", err)
	}
}

// TestBrokerRestart stops and restarts the RabbitMQ application under a
// running source. It disturbs every user of the broker, so it runs only
// with -long.
func TestBrokerRestart(t *testing.T) {
	if !*long {
		t.Skip("needs -long")
	}
	const n = 3000
	br := newBroker(t)
	q := uniqueName(t)
	br.queue(q, nil)
	br.publishRange(q, 1, n)
	br.conn.Close()

	src := newSource(t, rabbitmq.Config{Queue: q, BatchSize: 100})
	var got []int
	for len(got) < n/3 {
		b := next(t, src)
		got = append(got, ids(b)...)
		ack(t, b, nil)
	}
	rabbitmqctl := func(args ...string) {
		out, err := exec.Command("rabbitmqctl", args...).CombinedOutput()
		if err != nil {
			t.Errorf("rabbitmqctl %v: %v: %s", args, err, out)
		}
	}
	restored := false
	t.Cleanup(func() {
		if !restored {
			rabbitmqctl("start_app")
		}
	})
	rabbitmqctl("stop_app")
	time.Sleep(2 * time.Second) // let the source hit a few refused dials
	rabbitmqctl("start_app")
	restored = true
	got = drainAcked(t, src, n, got)
	if fs := firstSeen(got); !slices.Equal(fs, seq(1, n)) {
		t.Fatalf("lost or reordered across restart: %v", fs[:20])
	}
	closeSource(t, src)
	br = newBroker(t)
	if r := br.ready(q); r != 0 {
		t.Fatalf("%d messages left", r)
	}
}

// freezer is a TCP proxy to the broker whose existing connections can be
// frozen: bytes stop flowing both ways while the sockets stay open, as
// with a peer that died without a FIN. New connections flow.
type freezer struct {
	ln     net.Listener
	done   chan struct{} // closed when the test ends: frozen pipes return
	mu     sync.Mutex
	frozen []chan struct{}
}

func newFreezer(t *testing.T) *freezer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln, done: make(chan struct{})}
	var wg sync.WaitGroup
	var conns []net.Conn
	t.Cleanup(func() {
		close(f.done)
		ln.Close()
		f.mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		f.mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", "127.0.0.1:5672")
			if err != nil {
				c.Close()
				continue
			}
			stop := make(chan struct{})
			f.mu.Lock()
			conns = append(conns, c, up)
			f.frozen = append(f.frozen, stop)
			f.mu.Unlock()
			pipe := func(dst, src net.Conn) {
				buf := make([]byte, 32<<10)
				for {
					n, err := src.Read(buf)
					select {
					case <-stop:
						<-f.done // frozen: swallow, never forward
						return
					default:
					}
					if n > 0 {
						if _, werr := dst.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						dst.Close()
						return
					}
				}
			}
			wg.Go(func() { pipe(up, c) })
			wg.Go(func() { pipe(c, up) })
		}
	})
	return f
}

func (f *freezer) url() string { return "amqp://guest:guest@" + f.ln.Addr().String() + "/" }

// freeze stops every connection made so far.
func (f *freezer) freeze() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.frozen {
		close(s)
	}
	f.frozen = nil
}

// TestSilentPeer: a connection that goes silent without closing (the
// proxy swallows every byte) is detected by the read deadline the
// heartbeats keep moving, and the source reconnects and loses nothing.
func TestSilentPeer(t *testing.T) {
	const n = 600
	br := newBroker(t)
	q := uniqueName(t)
	br.queue(q, nil)
	br.publishRange(q, 1, n)
	f := newFreezer(t)

	src := newSource(t, rabbitmq.Config{URL: f.url(), Queue: q, BatchSize: 50, Prefetch: 100, Heartbeat: time.Second})
	var got []int
	for len(got) < n/4 {
		b := next(t, src)
		got = append(got, ids(b)...)
		ack(t, b, nil)
	}
	gen := src.Generation()
	f.freeze()
	got = drainAcked(t, src, n, got)
	if src.Generation() <= gen {
		t.Fatalf("generation %d: the silent connection was never replaced", src.Generation())
	}
	fs := firstSeen(got)
	for i := range fs {
		if fs[i] != i+1 {
			// The broker requeues what the silent connection held only
			// once it gives up on it, while the new one already consumes
			// later messages.
			t.Logf("order broke at the silent connection: %v", fs[max(0, i-3):min(len(fs), i+5)])
			break
		}
	}
	if slices.Sort(fs); !slices.Equal(fs, seq(1, n)) {
		t.Fatalf("lost messages: %d of %d", len(fs), n)
	}
	closeSource(t, src)
}
