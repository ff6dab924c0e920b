package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

const kafkaPartitions = 6

// startKafka runs an in-process Kafka-compatible broker with one topic.
func startKafka(topic string) (*kfake.Cluster, string, error) {
	c, err := kfake.NewCluster(kfake.Ports(0), kfake.SeedTopics(kafkaPartitions, topic))
	if err != nil {
		return nil, "", fmt.Errorf("kfake: %w", err)
	}
	return c, c.ListenAddrs()[0], nil
}

// produce writes the changes keyed by row id (hash partitioner), so each
// row's changes stay ordered in one partition.
func produce(ctx context.Context, addr, topic string, changes []canalChange) error {
	w := &kafka.Writer{Addr: kafka.TCP(addr), Topic: topic, Balancer: &kafka.Hash{},
		BatchSize: 1000, BatchBytes: 1 << 20, BatchTimeout: 5 * time.Millisecond, RequiredAcks: kafka.RequireOne}
	defer w.Close()
	msgs := make([]kafka.Message, 0, 20000)
	for i, c := range changes {
		msgs = append(msgs, kafka.Message{Key: strconv.AppendInt(nil, int64(c.id), 10), Value: c.value})
		if len(msgs) == cap(msgs) || i == len(changes)-1 {
			if err := w.WriteMessages(ctx, msgs...); err != nil {
				return fmt.Errorf("produce: %w", err)
			}
			msgs = msgs[:0]
		}
	}
	return nil
}

func kafkaSource(addr, topic, group string) string {
	return fmt.Sprintf(`  kafka:
    brokers: [%q]
    topics: [%q]
    group: %q
    format: canal-json`, addr, topic, group)
}

func runKafkaDrain(ctx context.Context, o *options, t *table) error {
	n := o.n(300_000)
	topic := "rs-bench-canal"
	cluster, addr, err := startKafka(topic)
	if err != nil {
		return err
	}
	defer cluster.Close()
	rc := redisDB(sinkDB)
	defer rc.Close()
	defer flush(context.Background(), sinkDB)
	if err := flush(ctx, sinkDB); err != nil {
		return err
	}
	changes, live := canalWorkload(n)
	pstart := time.Now()
	if err := produce(ctx, addr, topic, changes); err != nil {
		return err
	}
	o.log.Info("kafka topic written", "messages", n, "partitions", kafkaPartitions, "took", time.Since(pstart).Round(time.Millisecond))

	cfg := queueConfig("bench-kafka", kafkaSource(addr, topic, "rs-bench-rowsync"), o.work)
	res, redisCPU, err := timedDrain(ctx, o, "bench-kafka", cfg, n)
	if err != nil {
		return err
	}
	if err := checkHashes(ctx, rc, live); err != nil {
		return err
	}
	o.log.Info("rowsync kafka drain", "rows/s", int(res.rps()), "startup", res.startup, "steady", int(res.steadyRPS))

	if err := flush(ctx, sinkDB); err != nil {
		return err
	}
	// Baseline: kafka-go's Reader in a consumer group (offsets committed
	// every second), one json.Unmarshal and one HSET/DEL per message.
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, Topic: topic, GroupID: "rs-bench-naive",
		MaxBytes: 4 << 20, CommitInterval: time.Second, StartOffset: kafka.FirstOffset})
	defer r.Close()
	nctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	start := time.Now()
	var first time.Duration
	for i := range n {
		m, err := r.ReadMessage(nctx)
		if err != nil {
			return fmt.Errorf("naive read after %d: %w", i, err)
		}
		if i == 0 {
			first = time.Since(start)
		}
		if err := naiveCanal(nctx, rc, m.Value); err != nil {
			return fmt.Errorf("naive apply: %w", err)
		}
	}
	naive := time.Since(start)
	if err := waitDBSize(ctx, rc, int64(live), 30*time.Second); err != nil {
		return fmt.Errorf("after the naive drain: %w", err)
	}
	t.note("%s: %s (includes startup; the syncer/consumer baselines are single-threaded).", "Kafka drain", cpuNote(res.cpu, redisCPU, n))
	rps, nrps := res.rps(), float64(n)/naive.Seconds()
	t.add(row{bench: fmt.Sprintf("Kafka canal-json → Redis hashes, drain of %dk msgs", n/1000),
		figure: rate(rps, "rows/s"), baseline: rate(nrps, "rows/s") + " (kafka-go Reader, HSET/msg)",
		ratio: ratio(rps, nrps), target: "≥ 150k rows/s, ≥ 5×", pass: verdict(rps >= 150_000 && rps >= 5*nrps)})
	t.note("Kafka drain (%d partitions, in-process kfake broker sharing the 2 cores): rowsync %.0f rows/s from process start (group join + first fetch %s), %.0f rows/s after the first ack; peak RSS %d MiB. Naive first message after %s.",
		kafkaPartitions, rps, res.startup.Round(time.Millisecond), res.steadyRPS, res.peakRSS>>20, first.Round(time.Millisecond))
	return nil
}
