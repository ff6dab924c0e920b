package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// startRedis runs a throw-away redis-server on a free port, so the memory
// run can CLIENT PAUSE it without stalling anyone else.
func startRedis(ctx context.Context) (addr string, stop func(), err error) {
	addr, err = freeAddr()
	if err != nil {
		return "", nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--daemonize", "no", "--loglevel", "warning")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("redis-server: %w", err)
	}
	stop = func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	c := goredis.NewClient(&goredis.Options{Addr: addr})
	defer c.Close()
	for i := 0; ; i++ {
		if c.Ping(ctx).Err() == nil {
			return addr, stop, nil
		}
		if i > 100 {
			stop()
			return "", nil, fmt.Errorf("redis-server on %s did not answer", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runMemory measures rowsync's RSS idle, then with a backlog of 1M
// canal-json messages in Kafka while its Redis is paused (CLIENT PAUSE):
// the source may only take MaxInFlight batches, so RSS must stay flat.
func runMemory(ctx context.Context, o *options, t *table) error {
	n := o.n(1_000_000)
	topic := "rs-bench-mem"
	cluster, kaddr, err := startKafka(topic)
	if err != nil {
		return err
	}
	defer cluster.Close()
	raddr, stopRedis, err := startRedis(ctx)
	if err != nil {
		return err
	}
	defer stopRedis()
	rc := goredis.NewClient(&goredis.Options{Addr: raddr})
	defer rc.Close()

	cfg := queueConfig("bench-memory", kafkaSource(kaddr, topic, "rs-bench-mem"), o.work)
	cfg = strings.Replace(cfg, "addr: 127.0.0.1:6379", "addr: "+raddr, 1)
	cfg = strings.Replace(cfg, fmt.Sprintf("db: %d", sinkDB), "db: 0", 1)
	p, err := startRowsync(ctx, o, "bench-memory", cfg)
	if err != nil {
		return err
	}
	defer p.stop()
	pid := p.cmd.Process.Pid

	// Idle: connected, nothing to do.
	time.Sleep(5 * time.Second)
	if p.exited() {
		return fmt.Errorf("rowsync exited: %s", p.tail())
	}
	idle, err := rss(pid)
	if err != nil {
		return err
	}

	// Stall the sink, then queue the backlog behind it. WRITE, not ALL:
	// Redis 7.0 holds every command of every client under PAUSE ALL,
	// CLIENT UNPAUSE too, so the drain below waited for the pause to run
	// out (two minutes); under PAUSE WRITE the sink's transactions wait
	// just the same, and UNPAUSE works.
	pauseFor := o.memDur + 2*time.Minute
	if err := rc.Do(ctx, "CLIENT", "PAUSE", pauseFor.Milliseconds(), "WRITE").Err(); err != nil {
		return fmt.Errorf("client pause: %w", err)
	}
	unpause := func() error {
		c := goredis.NewClient(&goredis.Options{Addr: raddr})
		defer c.Close()
		return c.Do(context.Background(), "CLIENT", "UNPAUSE").Err()
	}
	defer unpause()
	changes, _ := canalWorkload(n)
	pstart := time.Now()
	if err := produce(ctx, kaddr, topic, changes); err != nil {
		return err
	}
	changes = nil
	o.log.Info("memory backlog written", "messages", n, "took", time.Since(pstart).Round(time.Millisecond))

	var samples []int64
	start := time.Now()
	for time.Since(start) < o.memDur {
		if p.exited() {
			return fmt.Errorf("rowsync exited: %s", p.tail())
		}
		if b, err := rss(pid); err == nil {
			samples = append(samples, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The peak is the kernel's high-water mark since the start (idle, the
	// backlog's arrival, the window): a sample every 200 ms may miss a
	// spike. The samples say whether RSS stays flat.
	peak := vmHWM(pid)
	m, _ := p.metrics(ctx)
	var firstQ, lastQ int64
	q := max(1, len(samples)/4)
	for i, s := range samples {
		if i < q {
			firstQ = max(firstQ, s)
		}
		if i >= len(samples)-q {
			lastQ = max(lastQ, s)
		}
	}
	flat := float64(lastQ) <= 1.1*float64(firstQ)+4<<20
	queued := m.events < float64(n)
	t.add(row{bench: "RSS idle", figure: fmt.Sprintf("%d MiB", idle>>20), target: "", pass: ""})
	t.add(row{bench: fmt.Sprintf("RSS, %dk-msg Kafka backlog, Redis paused, %s", n/1000, o.memDur),
		figure: fmt.Sprintf("max %d MiB", peak>>20), baseline: fmt.Sprintf("idle %d MiB", idle>>20),
		ratio: ratio(float64(peak), float64(idle)), target: "flat (bounded window)", pass: verdict(flat && queued)})
	t.note("memory: peak RSS %d MiB from the start to the end of the window (VmHWM); sampled every 200 ms over the window, max over its first quarter %d MiB, over its last quarter %d MiB; %.0f of %d events applied and %.0f batches in flight when sampling ended (the rest waits in Kafka).",
		peak>>20, firstQ>>20, lastQ>>20, m.events, n, m.inFlight)

	// Let it go: the backlog must drain once Redis answers again. The
	// high-water mark starts again here, so the drain's peak is its own.
	since := "since CLIENT UNPAUSE"
	if err := resetHWM(pid); err != nil {
		since = "of the whole run (the high-water mark could not be reset: " + err.Error() + ")"
	}
	drainStart := time.Now()
	if err := unpause(); err != nil {
		return fmt.Errorf("client unpause: %w", err)
	}
	res, err := p.waitDrain(ctx, n, 3*time.Minute)
	if err != nil {
		t.note("memory: after CLIENT UNPAUSE the backlog did not drain: %v", err)
		return nil
	}
	t.note("memory: after CLIENT UNPAUSE the %d-message backlog drained in %s (peak RSS while draining %d MiB, VmHWM %s).",
		n, res.end.Sub(drainStart).Round(time.Millisecond), res.peakRSS>>20, since)
	return nil
}
