package main

import (
	"context"
	"fmt"
	"os"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/rowsync/rowsync/source/rabbitmq"
)

const amqpURL = "amqp://guest:guest@127.0.0.1:5672/"

func runRabbitDrain(ctx context.Context, o *options, t *table) error {
	n := o.n(100_000)
	conn, err := amqp.Dial(amqpURL)
	if err != nil {
		return fmt.Errorf("rabbitmq: %w", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	qRowsync := fmt.Sprintf("rs-bench-rowsync-%d", os.Getpid())
	qNaive := fmt.Sprintf("rs-bench-naive-%d", os.Getpid())
	qCeil := fmt.Sprintf("rs-bench-ceiling-%d", os.Getpid())
	qCeil2 := fmt.Sprintf("rs-bench-ceiling2-%d", os.Getpid())
	queues := []string{qRowsync, qNaive, qCeil, qCeil2}
	qMulti := fmt.Sprintf("rs-bench-consumers-%d", os.Getpid())
	if o.rabbitConsumers > 1 {
		queues = append(queues, qMulti)
	}
	for _, q := range queues {
		if _, err := ch.QueueDeclare(q, false, false, false, false, nil); err != nil {
			return fmt.Errorf("declare %s: %w", q, err)
		}
		defer func() { _, _ = ch.QueueDelete(q, false, false, false) }()
	}
	rc := redisDB(sinkDB)
	defer rc.Close()
	defer flush(context.Background(), sinkDB)
	if err := flush(ctx, sinkDB); err != nil {
		return err
	}

	changes, live := canalWorkload(n)
	pstart := time.Now()
	if err := ch.Confirm(false); err != nil {
		return err
	}
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 4096))
	pending := 0
	for _, c := range changes {
		for _, q := range queues {
			if err := ch.PublishWithContext(ctx, "", q, false, false,
				amqp.Publishing{ContentType: "application/json", Body: c.value}); err != nil {
				return fmt.Errorf("publish: %w", err)
			}
			pending++
		}
		for pending > 2000 { // keep the window bounded
			if cf := <-confirms; !cf.Ack {
				return fmt.Errorf("publish %d nacked", cf.DeliveryTag)
			}
			pending--
		}
	}
	for ; pending > 0; pending-- {
		if cf := <-confirms; !cf.Ack {
			return fmt.Errorf("publish %d nacked", cf.DeliveryTag)
		}
	}
	o.log.Info("rabbitmq queues written", "messages", n, "queues", len(queues), "took", time.Since(pstart).Round(time.Millisecond))

	src := fmt.Sprintf("  rabbitmq:\n    url: %q\n    queue: %q\n    format: canal-json", amqpURL, qRowsync)
	// The broker's ceiling is measured right before rowsync's drain and
	// again after the naive one; their mean is the baseline, so a load
	// change during the run shifts both sides alike.
	prefetch, ackEvery := rabbitmq.DefaultPrefetch(), rabbitmq.DefaultBatchSize
	ceilBefore, err := brokerCeiling(ctx, conn, qCeil, n, prefetch, ackEvery)
	if err != nil {
		return fmt.Errorf("broker ceiling: %w", err)
	}
	// drainChecked times one rowsync drain of name's config, checks the
	// end state and empties the sink DB for the next drain.
	drainChecked := func(name, src string) (drainResult, time.Duration, error) {
		res, redisCPU, err := timedDrain(ctx, o, name, queueConfig(name, src, o.work), n)
		if err != nil {
			return res, 0, err
		}
		if err := checkHashes(ctx, rc, live); err != nil {
			return res, 0, err
		}
		return res, redisCPU, flush(ctx, sinkDB)
	}
	res, redisCPU, err := drainChecked("bench-rabbitmq", src)
	if err != nil {
		return err
	}
	var multi drainResult
	if o.rabbitConsumers > 1 {
		// Several consumers of one queue: the workload's changes of one row
		// are at least 20,000 messages apart, beyond what the consumers'
		// windows reorder, so the end state checks as for one consumer.
		msrc := fmt.Sprintf("  rabbitmq:\n    url: %q\n    queue: %q\n    format: canal-json\n    consumers: %d\n    unordered: true", amqpURL, qMulti, o.rabbitConsumers)
		r, rcpu, err := drainChecked("bench-rabbitmq-consumers", msrc)
		if err != nil {
			return err
		}
		multi = r
		t.note("RabbitMQ drain with consumers: %d (unordered): %s; %.0f rows/s from process start, peak RSS %d MiB.",
			o.rabbitConsumers, cpuNote(r.cpu, rcpu, n), r.rps(), r.peakRSS>>20)
	}

	// Baseline: one consumer, prefetch 100, json.Unmarshal + one HSET/DEL
	// and one basic.ack per message.
	nch, err := conn.Channel()
	if err != nil {
		return err
	}
	defer nch.Close()
	if err := nch.Qos(100, 0, false); err != nil {
		return err
	}
	start := time.Now()
	deliveries, err := nch.ConsumeWithContext(ctx, qNaive, "", false, false, false, false, nil)
	if err != nil {
		return err
	}
	nctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	for i := range n {
		var d amqp.Delivery
		select {
		case d = <-deliveries:
		case <-nctx.Done():
			return fmt.Errorf("naive: %d of %d messages: %w", i, n, nctx.Err())
		}
		if err := naiveCanal(nctx, rc, d.Body); err != nil {
			return fmt.Errorf("naive apply: %w", err)
		}
		if err := d.Ack(false); err != nil {
			return err
		}
	}
	naive := time.Since(start)
	if err := waitDBSize(ctx, rc, int64(live), 30*time.Second); err != nil {
		return fmt.Errorf("after the naive drain: %w", err)
	}
	ceilAfter, err := brokerCeiling(ctx, conn, qCeil2, n, prefetch, ackEvery)
	if err != nil {
		return fmt.Errorf("broker ceiling: %w", err)
	}
	ceil := pooledRate(ceilBefore, ceilAfter)
	t.note("%s: %s (includes startup; the syncer/consumer baselines are single-threaded).", "RabbitMQ drain", cpuNote(res.cpu, redisCPU, n))
	rps, nrps := res.rps(), float64(n)/naive.Seconds()
	t.note("RabbitMQ broker ceiling, same run: a consumer that only receives and acks with rowsync's prefetch (%d) and one multiple ack per batch (%d), no decode, no Redis, gets %.0f msgs/s (%.0f before rowsync's drain, %.0f after the naive one).", prefetch, ackEvery, ceil, ceilBefore, ceilAfter)
	t.add(row{bench: fmt.Sprintf("RabbitMQ canal-json → Redis hashes, drain of %dk msgs", n/1000),
		figure: rate(rps, "rows/s"), baseline: rate(nrps, "rows/s") + " (ack+HSET/msg)",
		ratio: ratio(rps, nrps), target: "≥ 5× naive", pass: verdict(rps >= 5*nrps)})
	t.add(row{bench: "RabbitMQ drain vs the broker's own ceiling",
		figure: rate(rps, "rows/s"), baseline: rate(ceil, "msgs/s") + " (receive+ack only)",
		ratio: fmt.Sprintf("%.0f%%", 100*rps/ceil), target: "≥ 80% of ceiling", pass: verdict(rps >= 0.8*ceil)})
	if o.rabbitConsumers > 1 {
		mrps := multi.rps()
		t.add(row{bench: fmt.Sprintf("RabbitMQ drain, %d consumers (unordered), vs the ceiling", o.rabbitConsumers),
			figure: rate(mrps, "rows/s"), baseline: rate(ceil, "msgs/s") + " (receive+ack only)",
			ratio: fmt.Sprintf("%.0f%%", 100*mrps/ceil), target: "—", pass: "—"})
	}
	t.note("RabbitMQ drain: rowsync %.0f rows/s from process start (connect %s), %.0f rows/s after the first ack; peak RSS %d MiB. Naive consumer: prefetch 100, per-message ack.",
		rps, res.startup.Round(time.Millisecond), res.steadyRPS, res.peakRSS>>20)
	return nil
}

// brokerCeiling is how fast the broker alone delivers n messages of queue
// to a consumer with the given prefetch that acks every ackEvery messages
// (multiple): no decoding, no sink.
func brokerCeiling(ctx context.Context, conn *amqp.Connection, queue string, n, prefetch, ackEvery int) (float64, error) {
	ch, err := conn.Channel()
	if err != nil {
		return 0, err
	}
	defer ch.Close()
	if err := ch.Qos(prefetch, 0, false); err != nil {
		return 0, err
	}
	start := time.Now()
	deliveries, err := ch.ConsumeWithContext(ctx, queue, "", false, false, false, false, nil)
	if err != nil {
		return 0, err
	}
	timeout := time.After(5 * time.Minute)
	for i := 1; i <= n; i++ {
		select {
		case d := <-deliveries:
			if i%ackEvery == 0 || i == n {
				if err := d.Ack(true); err != nil {
					return 0, err
				}
			}
		case <-timeout:
			return 0, fmt.Errorf("%d of %d messages", i, n)
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}
