package rabbitmq_test

import (
	"context"
	"strconv"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/rowsync/rowsync/source/decode"
	"github.com/rowsync/rowsync/source/rabbitmq"
)

// fill publishes n small transient messages to a fresh queue, without
// confirms, and waits until the broker holds them all.
func fill(b *testing.B, br *broker, n int) string {
	b.Helper()
	q := uniqueName(b)
	br.queue(q, nil)
	ch, err := br.conn.Channel()
	if err != nil {
		b.Fatal(err)
	}
	defer ch.Close()
	ctx := context.Background()
	for i := 1; i <= n; i++ {
		if err := ch.PublishWithContext(ctx, "", q, false, false, amqp.Publishing{Body: strconv.AppendInt(nil, int64(i), 10)}); err != nil {
			b.Fatal(err)
		}
	}
	eventually(b, "queue filled", func() bool { return br.ready(q) == n })
	return q
}

// drainSource times Next+Ack through the Source until n events arrived.
func drainSource(b *testing.B, q string, n int) time.Duration {
	src, err := rabbitmq.New(rabbitmq.Config{URL: brokerURL, Queue: q}, idDecoder{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer closeSource(b, src)
	ctx := context.Background()
	start := time.Now()
	for got := 0; got < n; {
		bt, err := src.Next(ctx)
		if err != nil {
			b.Fatal(err)
		}
		got += len(bt.Events)
		if err := bt.Ack(ctx, nil); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start)
}

// drainNaive is the baseline: decode each delivery and ack it on its own.
func drainNaive(b *testing.B, q string, n, prefetch int) time.Duration {
	conn, err := amqp.Dial(brokerURL)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		b.Fatal(err)
	}
	if err := ch.Qos(prefetch, 0, false); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	deliveries, err := ch.Consume(q, "", false, false, false, false, nil)
	if err != nil {
		b.Fatal(err)
	}
	var dec idDecoder
	for got := 0; got < n; {
		d := <-deliveries
		evs, err := dec.Decode(decodeMessage(q, &d))
		if err != nil {
			b.Fatal(err)
		}
		got += len(evs)
		if err := d.Ack(false); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start)
}

// BenchmarkDrain pre-publishes b.N messages and measures how fast the
// Source drains them through Next+Ack, beside naive consumers that ack
// every message on its own (with the Source's default prefetch, and with
// prefetch 1, one round trip per message), and the CPU the Source's drain
// used per message. Run with -benchtime=100000x.
func BenchmarkDrain(b *testing.B) {
	n := b.N
	br := newBroker(b)
	b.StopTimer()
	qs := [3]string{fill(b, br, n), fill(b, br, n), fill(b, br, n)}
	b.StartTimer()
	cpu0 := cpuTime(b)
	src := drainSource(b, qs[0], n)
	cpu := cpuTime(b) - cpu0
	b.StopTimer()
	naive := drainNaive(b, qs[1], n, rabbitmq.DefaultPrefetch())
	naive1 := drainNaive(b, qs[2], n, 1)

	rate := func(d time.Duration) float64 { return float64(n) / d.Seconds() }
	b.ReportMetric(rate(src), "msgs/s")
	b.ReportMetric(rate(naive), "naive_msgs/s")
	b.ReportMetric(rate(naive1), "naive_prefetch1_msgs/s")
	b.ReportMetric(rate(src)/rate(naive), "x_naive")
	b.ReportMetric(rate(src)/rate(naive1), "x_naive_prefetch1")
	b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu_µs/msg")
}

// cpuTime is the CPU time (user+system) this process used so far: the
// Source's cost per message is stable on a busy machine where rates are not.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func decodeMessage(q string, d *amqp.Delivery) decode.Message {
	return decode.Message{Value: d.Body, Topic: q, Offset: int64(d.DeliveryTag)}
}
