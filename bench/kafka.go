package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	rkafka "github.com/rowsync/rowsync/source/kafka"
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

	// The broker's ceiling is measured right before rowsync's drain and
	// again after the naive one (each with a group of its own, from the
	// topic's start); their mean is the baseline, as for RabbitMQ.
	ceilBefore, err := kafkaCeiling(ctx, addr, topic, "rs-bench-ceiling", n)
	if err != nil {
		return fmt.Errorf("broker ceiling: %w", err)
	}

	cfg := queueConfig("bench-kafka", kafkaSource(addr, topic, "rs-bench-rowsync"), o.work)
	// At info rowsync logs a few lines at start (none per batch): their
	// times split the startup (startupSteps).
	cfg = strings.Replace(cfg, "log:\n  level: warn\n", "log:\n  level: info\n", 1)
	// The driver's own CPU during rowsync's drain is mostly the broker's
	// (kfake serves the fetches and commits in this process); the bench's
	// /metrics polls and /proc samplers are in it too (the note says so).
	runtime.GC() // the produce's garbage is not the broker's
	broker0 := time.Now()
	broker := sampleCPU(os.Getpid(), time.Time{})
	res, redisCPU, err := timedDrain(ctx, o, "bench-kafka", cfg, n)
	brokerCPU := broker.at(res.end) - broker.at(broker0)
	broker.close()
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
	_ = r.Close() // its fetcher would keep polling the broker beside the ceiling
	if err := waitDBSize(ctx, rc, int64(live), 30*time.Second); err != nil {
		return fmt.Errorf("after the naive drain: %w", err)
	}
	ceilAfter, err := kafkaCeiling(ctx, addr, topic, "rs-bench-ceiling2", n)
	if err != nil {
		return fmt.Errorf("broker ceiling: %w", err)
	}
	ceil := pooledRate(ceilBefore.rps, ceilAfter.rps)
	t.note("%s: %s, the driver (the kfake broker, with the driver's polls and samplers) %.1f µs (includes startup; the syncer/consumer baselines are single-threaded).",
		"Kafka drain", cpuNote(res.cpu, redisCPU, n), float64(brokerCPU)/float64(n)/1e3)
	// Everything a row costs on this machine, rowsync, redis-server and
	// the broker together, bounds the rate the cores allow.
	perRow := float64(res.cpu+redisCPU+brokerCPU) / float64(n) / 1e3
	t.note("Kafka drain: the three processes together spent %.1f µs CPU per row: the %d cores allow at most %.0fk rows/s at that cost.",
		perRow, runtime.NumCPU(), float64(runtime.NumCPU())/perRow*1e3)
	rps, nrps := res.rps(), float64(n)/naive.Seconds()
	t.add(row{bench: fmt.Sprintf("Kafka canal-json → Redis hashes, drain of %dk msgs", n/1000),
		figure: rate(rps, "rows/s"), baseline: rate(nrps, "rows/s") + " (kafka-go Reader, HSET/msg)",
		ratio: ratio(rps, nrps), target: "≥ 150k rows/s, ≥ 5×", pass: verdict(rps >= 150_000 && rps >= 5*nrps)})
	t.add(row{bench: "Kafka drain vs the broker's own ceiling",
		figure: rate(rps, "rows/s"), baseline: rate(ceil, "msgs/s") + " (fetch only)",
		ratio: fmt.Sprintf("%.0f%%", 100*rps/ceil), target: "—", pass: "—"})
	t.note("Kafka broker ceiling, same run: a consumer-group member in the driver that reads the topic as rowsync's source does (kafka-go ConsumerGroup, a connection per partition through the source's dialer, ReadBatchWith with fetch_max_bytes %d MiB and fetch_max_wait %s, commits every %s), no decode, no Redis, gets %.0f msgs/s from joining the group (%.0f before rowsync's drain, %.0f after the naive one; first message after %s and %s); the driver's CPU, broker and that consumer together, %.1f and %.1f µs/msg.",
		rkafka.DefaultFetchMaxBytes>>20, rkafka.DefaultFetchMaxWait, rkafka.DefaultCommitInterval, ceil, ceilBefore.rps, ceilAfter.rps,
		ceilBefore.first.Round(time.Millisecond), ceilAfter.first.Round(time.Millisecond),
		float64(ceilBefore.cpu)/float64(n)/1e3, float64(ceilAfter.cpu)/float64(n)/1e3)
	t.note("Kafka drain (%d partitions, in-process kfake broker sharing the 2 cores): rowsync %.0f rows/s from process start (startup: %s), %.0f rows/s after the first ack; peak RSS %d MiB. Naive first message after %s.",
		kafkaPartitions, rps, startupSteps(o.log, filepath.Join(o.work, "bench-kafka.log"), res),
		res.steadyRPS, res.peakRSS>>20, first.Round(time.Millisecond))
	return nil
}

// startupSteps splits a Kafka drain's startup by the times of rowsync's
// log lines (millisecond resolution): its first line (exec, package init,
// the config read), "partitions assigned" (the consumer group joined),
// then the first changes applied as the driver's polls saw them (up to
// 50 ms late: the first fetches, decoding, the first batch and its apply).
// Without the log times it says why, in the note and the driver's log.
func startupSteps(log *slog.Logger, logPath string, res drainResult) string {
	applied := "first changes applied " + res.startup.Round(time.Millisecond).String()
	b, err := os.ReadFile(logPath)
	if err != nil {
		log.Warn("kafka startup not split", "err", err)
		return applied + " (not split: " + err.Error() + ")"
	}
	started := res.end.Add(-res.total)
	var first, assigned time.Time
	for _, line := range strings.Split(string(b), "\n") {
		v, ok := strings.CutPrefix(line, "time=")
		if !ok {
			continue
		}
		stamp, _, _ := strings.Cut(v, " ")
		at, err := time.Parse(time.RFC3339Nano, stamp)
		if err != nil {
			continue
		}
		if first.IsZero() {
			first = at
		}
		if strings.Contains(line, `msg="partitions assigned"`) {
			assigned = at
			break
		}
	}
	if first.IsZero() || assigned.IsZero() {
		why := fmt.Sprintf("rowsync's log %s has no timed line or no \"partitions assigned\" (is it at level info?)", logPath)
		log.Warn("kafka startup not split", "why", why)
		return applied + " (not split: " + why + ")"
	}
	return fmt.Sprintf("first log line %s (exec, package init, config), partitions assigned %s (group join), first changes applied %s (fetches, decoding, the first batch's apply; seen by polls up to 50 ms late)",
		first.Sub(started).Round(time.Millisecond), assigned.Sub(started).Round(time.Millisecond), res.startup.Round(time.Millisecond))
}

// kafkaCeilingResult is one run of kafkaCeiling.
type kafkaCeilingResult struct {
	rps   float64       // messages per second, group join to the last message
	first time.Duration // group join to the first message
	cpu   time.Duration // the driver's CPU meanwhile: broker and consumer
}

// kafkaCeiling is how fast the in-process broker alone delivers the n
// messages of topic to a consumer-group member that reads them the way
// rowsync's Kafka source does, with its settings (the source's defaults,
// which the bench's config keeps), and does nothing with them: no decode,
// no sink. It joins group with kafka-go's ConsumerGroup; per assigned
// partition it dials the leader with the source's dialer (source/kafka
// Dialer: 64 KiB read buffer), resolves the first offset, commits it as
// the start, and reads with ReadBatchWith (min 1 byte, fetch_max_bytes,
// fetch_max_wait) and Batch.ReadMessage; offsets are committed every
// commit_interval. The rate runs from the group's creation (rowsync's
// figure runs from its process start) to the n-th message read.
func kafkaCeiling(ctx context.Context, addr, topic, group string, n int) (kafkaCeilingResult, error) {
	var res kafkaCeilingResult
	cfg := rkafka.Config{Brokers: []string{addr}, Topics: []string{topic}, Group: group}
	dialer, err := rkafka.Dialer(cfg)
	if err != nil {
		return res, err
	}
	runtime.GC() // the garbage of what ran before is not the broker's
	self := os.Getpid()
	cpu0 := cpuTime(self)
	start := time.Now()
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                    group,
		Brokers:               cfg.Brokers,
		Dialer:                dialer,
		Topics:                cfg.Topics,
		HeartbeatInterval:     rkafka.DefaultHeartbeatInterval,
		SessionTimeout:        rkafka.DefaultSessionTimeout,
		RebalanceTimeout:      rkafka.DefaultRebalanceTimeout,
		JoinGroupBackoff:      time.Second,
		WatchPartitionChanges: true,
		StartOffset:           kafka.FirstOffset,
		Timeout:               rkafka.DefaultDialTimeout,
	})
	if err != nil {
		return res, fmt.Errorf("ceiling group: %w", err)
	}
	defer cg.Close()
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	gen, err := cg.Next(cctx)
	if err != nil {
		return res, fmt.Errorf("ceiling group: %w", err)
	}
	var (
		read     atomic.Int64
		firstAt  atomic.Int64 // unix nanos of the first message
		done     = make(chan struct{})
		doneOnce sync.Once
		errs     = make(chan error, 1)
		offsets  sync.Map // partition -> *atomic.Int64, the next offset
	)
	fail := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	for _, a := range gen.Assignments[topic] {
		next := new(atomic.Int64)
		offsets.Store(a.ID, next)
		gen.Start(func(gctx context.Context) {
			conn, err := dialer.DialLeader(gctx, "tcp", addr, topic, a.ID)
			if err != nil {
				fail(err)
				return
			}
			defer conn.Close()
			stop := context.AfterFunc(gctx, func() { _ = conn.Close() })
			defer stop()
			first, _, err := conn.ReadOffsets()
			if err != nil {
				fail(err)
				return
			}
			off := a.Offset
			if off < 0 {
				off = first
			}
			if _, err := conn.Seek(off, kafka.SeekAbsolute|kafka.SeekDontCheck); err != nil {
				fail(err)
				return
			}
			if err := gen.CommitOffsets(map[string]map[int]int64{topic: {a.ID: off}}); err != nil {
				fail(err)
				return
			}
			next.Store(off)
			for gctx.Err() == nil {
				_ = conn.SetReadDeadline(time.Now().Add(rkafka.DefaultFetchMaxWait + rkafka.DefaultDialTimeout))
				b := conn.ReadBatchWith(kafka.ReadBatchConfig{MinBytes: 1,
					MaxBytes: rkafka.DefaultFetchMaxBytes, MaxWait: rkafka.DefaultFetchMaxWait})
				for {
					m, err := b.ReadMessage()
					if err != nil {
						break
					}
					next.Store(m.Offset + 1)
					switch c := read.Add(1); {
					case c == 1:
						firstAt.Store(time.Now().UnixNano())
					case c == int64(n):
						doneOnce.Do(func() { close(done) })
					}
				}
				if err := b.Close(); err != nil && !errors.Is(err, kafka.RequestTimedOut) && gctx.Err() == nil {
					fail(err)
					return
				}
			}
		})
	}
	commit := func() {
		m := map[int]int64{}
		offsets.Range(func(k, v any) bool {
			if o := v.(*atomic.Int64).Load(); o > 0 {
				m[k.(int)] = o
			}
			return true
		})
		_ = gen.CommitOffsets(map[string]map[int]int64{topic: m})
	}
	gen.Start(func(gctx context.Context) {
		t := time.NewTicker(rkafka.DefaultCommitInterval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				commit()
			case <-gctx.Done():
				return
			}
		}
	})
	select {
	case <-done:
	case err := <-errs:
		return res, fmt.Errorf("ceiling read: %w", err)
	case <-cctx.Done():
		return res, fmt.Errorf("ceiling: %d of %d messages: %w", read.Load(), n, cctx.Err())
	}
	took := time.Since(start)
	res.cpu = cpuTime(self) - cpu0
	res.rps = float64(n) / took.Seconds()
	res.first = time.Unix(0, firstAt.Load()).Sub(start)
	return res, nil
}
