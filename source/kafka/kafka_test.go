package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/goleak"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/metrics"
	"github.com/rowsync/rowsync/source/decode"
)

// testDecoder turns each message value into one event, except:
// "bad..." fails, "panic" panics, "skip" carries no change.
type testDecoder struct{}

func (testDecoder) Decode(m decode.Message) ([]cdc.Event, error) {
	v := string(m.Value)
	switch {
	case strings.HasPrefix(v, "bad"):
		return nil, errors.New("bad message")
	case v == "panic":
		panic("boom")
	case v == "skip":
		return nil, nil
	}
	return []cdc.Event{{
		DB: "db", Table: m.Topic, Op: cdc.Insert, PK: []string{"v"},
		After: cdc.RowOf("v", v),
	}}, nil
}

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.DiscardHandler)
}

// newCluster starts an in-process kfake broker with one seeded topic.
func newCluster(t testing.TB, partitions int32, topics ...string) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.Ports(0), kfake.SeedTopics(partitions, topics...))
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

func testConfig(addr, topic, group string) Config {
	return Config{
		Brokers:           []string{addr},
		Topics:            []string{topic},
		Group:             group,
		BatchSize:         10,
		MaxWait:           5 * time.Millisecond,
		FetchMaxWait:      100 * time.Millisecond,
		CommitInterval:    50 * time.Millisecond,
		HeartbeatInterval: 200 * time.Millisecond,
		SessionTimeout:    30 * time.Second,
		RebalanceTimeout:  40 * time.Second,
		RevokeTimeout:     20 * time.Second,
	}
}

// produce writes values to one partition, in order.
func produce(t testing.TB, addr, topic string, partition int, values ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := kafka.DialLeader(ctx, "tcp", addr, topic, partition)
	if err != nil {
		t.Fatalf("dial leader: %v", err)
	}
	defer conn.Close()
	for len(values) > 0 {
		n := min(len(values), 2000)
		msgs := make([]kafka.Message, n)
		for i, v := range values[:n] {
			msgs[i] = kafka.Message{Value: []byte(v)}
		}
		_ = conn.SetWriteDeadline(time.Now().Add(time.Minute))
		if _, err := conn.WriteMessages(msgs...); err != nil {
			t.Fatalf("produce: %v", err)
		}
		values = values[n:]
	}
}

func seqValues(partition, from, to int) []string {
	var vs []string
	for i := from; i < to; i++ {
		vs = append(vs, fmt.Sprintf("p%d-%d", partition, i))
	}
	return vs
}

// parseValue splits "p<partition>-<seq>".
func parseValue(t testing.TB, v string) (int, int) {
	t.Helper()
	p, s, ok := strings.Cut(strings.TrimPrefix(v, "p"), "-")
	pi, err1 := strconv.Atoi(p)
	si, err2 := strconv.Atoi(s)
	if !ok || err1 != nil || err2 != nil {
		t.Fatalf("bad value %q", v)
	}
	return pi, si
}

// committed returns the group's committed offsets: -1 for a partition
// without one, including every partition of a group the broker does not
// know yet. (A missing entry must not read as offset 0: that made
// TestStartPolicy/latest produce before the member had resolved its start,
// and wait forever for messages that lay before it.)
func committed(t testing.TB, addr, group, topic string, partitions int) map[int]int64 {
	t.Helper()
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	cl := &kafka.Client{Addr: kafka.TCP(addr), Transport: tr, Timeout: 30 * time.Second}
	var ps []int
	out := map[int]int64{}
	for p := range partitions {
		ps = append(ps, p)
		out[p] = -1
	}
	resp, err := cl.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{
		GroupID: group, Topics: map[string][]int{topic: ps},
	})
	if err == nil && resp.Error != nil && !errors.Is(resp.Error, kafka.GroupIdNotFound) {
		err = resp.Error
	}
	if err != nil {
		t.Fatalf("offset fetch: %v", err)
	}
	for _, p := range resp.Topics[topic] {
		if p.Error != nil {
			t.Fatalf("offset fetch partition %d: %v", p.Partition, p.Error)
		}
		out[p.Partition] = p.CommittedOffset
	}
	return out
}

// waitFor polls cond until it holds or a generous timeout passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func newSource(t testing.TB, cfg Config) *Source {
	t.Helper()
	s, err := New(cfg, testDecoder{}, testLogger())
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	return s
}

func closeSource(t testing.TB, s *Source) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Errorf("close: %v", err)
	}
}

func next(t testing.TB, s *Source) cdc.Batch {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	b, err := s.Next(ctx)
	if err != nil {
		t.Fatalf("next: %v", err)
	}
	return b
}

func ack(t testing.TB, b cdc.Batch) {
	t.Helper()
	if err := b.Ack(context.Background(), nil); err != nil {
		t.Fatalf("ack: %v", err)
	}
}

func values(b cdc.Batch) []string {
	var vs []string
	for _, e := range b.Events {
		// A recycled (cleared or refilled) row must fail the comparison
		// that follows, not panic here.
		v, ok := e.After.Get("v").(string)
		if !ok {
			v = fmt.Sprintf("<no string v: %v>", e.After)
		}
		vs = append(vs, v)
	}
	return vs
}

func TestDecodeOrderAndCommit(t *testing.T) {
	const topic, group, parts, per = "order", "g-order", 3, 57
	addr := newCluster(t, parts, topic)
	for p := range parts {
		produce(t, addr, topic, p, seqValues(p, 0, per)...)
	}
	cfg := testConfig(addr, topic, group)
	cfg.BatchSize = 16
	s := newSource(t, cfg)
	nextSeq := map[int]int{}
	total := 0
	for total < parts*per {
		b := next(t, s)
		if n := len(b.Events); n > cfg.BatchSize {
			t.Fatalf("batch of %d events, batch_size %d", n, cfg.BatchSize)
		}
		for _, e := range b.Events {
			v := e.After.Get("v").(string)
			p, seq := parseValue(t, v)
			if seq != nextSeq[p] {
				t.Fatalf("partition %d: got seq %d, want %d", p, seq, nextSeq[p])
			}
			nextSeq[p]++
			if want := fmt.Sprintf("%s/%d@%d", topic, p, seq); e.Pos.Text != want {
				t.Fatalf("pos %q, want %q", e.Pos.Text, want)
			}
			total++
		}
		ack(t, b)
	}
	waitFor(t, "all offsets committed", func() bool {
		c := committed(t, addr, group, topic, parts)
		for p := range parts {
			if c[p] != per {
				return false
			}
		}
		return true
	})
	waitFor(t, "lag 0 once caught up", func() bool { return s.Lag() == 0 })
	closeSource(t, s)
}

// TestCrashRedelivers acts out a crash: nothing is committed after the
// crash point, and a new member of the group starts at the last committed
// watermark, which never passes the unacked hole.
func TestCrashRedelivers(t *testing.T) {
	const topic, group = "crash", "g-crash"
	addr := newCluster(t, 1, topic)
	produce(t, addr, topic, 0, seqValues(0, 0, 100)...)

	a := newSource(t, testConfig(addr, topic, group))
	var batches []cdc.Batch
	for n := 0; n < 60; {
		b := next(t, a)
		n += len(b.Events)
		batches = append(batches, b)
	}
	// Ack everything but the batch holding offset 30: a hole.
	hole := -1
	for i, b := range batches {
		vs := values(b)
		_, first := parseValue(t, vs[0])
		_, last := parseValue(t, vs[len(vs)-1])
		if first <= 30 && 30 <= last {
			hole = i
			continue
		}
		ack(t, b)
	}
	_, holeStart := parseValue(t, values(batches[hole])[0])
	waitFor(t, "commit up to the hole", func() bool {
		return committed(t, addr, group, topic, 1)[0] == int64(holeStart)
	})
	a.dead.Store(true) // crash: no more commits
	ack(t, batches[hole])
	closeSource(t, a)
	if c := committed(t, addr, group, topic, 1)[0]; c != int64(holeStart) {
		t.Fatalf("committed %d after crash, want %d", c, holeStart)
	}

	b := newSource(t, testConfig(addr, topic, group))
	want := holeStart
	for want < 100 {
		bt := next(t, b)
		for _, v := range values(bt) {
			if _, seq := parseValue(t, v); seq != want {
				t.Fatalf("after restart got seq %d, want %d", seq, want)
			}
			want++
		}
		ack(t, bt)
	}
	closeSource(t, b)
	if c := committed(t, addr, group, topic, 1)[0]; c != 100 {
		t.Fatalf("committed %d after Close, want 100", c)
	}
}

func TestPoisonMessages(t *testing.T) {
	const topic, group = "poison", "g-poison"
	addr := newCluster(t, 1, topic)
	produce(t, addr, topic, 0, "ok0", "bad1", "panic", "ok3", "skip")
	s := newSource(t, testConfig(addr, topic, group))
	var events []string
	var rejects []cdc.Reject
	for len(events)+len(rejects) < 4 {
		b := next(t, s)
		events = append(events, values(b)...)
		rejects = append(rejects, b.Rejects...)
		ack(t, b)
	}
	if !slices.Equal(events, []string{"ok0", "ok3"}) {
		t.Errorf("events %q", events)
	}
	if len(rejects) != 2 {
		t.Fatalf("rejects %v", rejects)
	}
	for i, want := range []struct{ pos, raw string }{{topic + "/0@1", "bad1"}, {topic + "/0@2", "panic"}} {
		r := rejects[i]
		if r.Pos.Text != want.pos || string(r.Raw) != want.raw || r.Reason == nil {
			t.Errorf("reject %d = {%q %q %v}, want {%q %q error}", i, r.Pos.Text, r.Raw, r.Reason, want.pos, want.raw)
		}
	}
	waitFor(t, "commit past the poison and the skip", func() bool {
		return committed(t, addr, group, topic, 1)[0] == 5
	})
	closeSource(t, s)
}

func TestStartPolicy(t *testing.T) {
	for _, tc := range []struct {
		start     string
		wantStart int64 // the offset the member resolves and commits first
		want      []string
	}{
		{"earliest", 0, append(seqValues(0, 0, 10), seqValues(0, 10, 15)...)},
		{"latest", 10, seqValues(0, 10, 15)},
	} {
		t.Run(tc.start, func(t *testing.T) {
			topic, group := "start-"+tc.start, "g-start-"+tc.start
			addr := newCluster(t, 1, topic)
			produce(t, addr, topic, 0, seqValues(0, 0, 10)...)
			if c := committed(t, addr, group, topic, 1)[0]; c != -1 {
				t.Fatalf("group that never ran has committed offset %d, want -1", c)
			}
			cfg := testConfig(addr, topic, group)
			cfg.Start = tc.start
			s := newSource(t, cfg)
			got := make(chan []string, 1)
			nextCtx, cancelNext := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancelNext()
			go func() {
				var vs []string
				for len(vs) < len(tc.want) {
					b, err := s.Next(nextCtx)
					if err != nil {
						break
					}
					vs = append(vs, values(b)...)
					_ = b.Ack(context.Background(), nil)
				}
				got <- vs
			}()
			// The resolved start is committed before anything is handed
			// out, so a restart or rebalance before any message arrives does
			// not resolve "latest" again and skip what arrives meanwhile.
			waitFor(t, "start offset committed", func() bool {
				return committed(t, addr, group, topic, 1)[0] >= tc.wantStart
			})
			produce(t, addr, topic, 0, seqValues(0, 10, 15)...)
			if vs := <-got; !slices.Equal(vs, tc.want) {
				t.Errorf("got %q, want %q", vs, tc.want)
			}
			closeSource(t, s)
		})
	}
}

// TestLatestWhileProducing starts a "latest" member while messages keep
// arriving: wherever its start falls, it must deliver every message after
// it, in order, up to the last one written: it never sits silent on a
// partition that has messages past its position.
func TestLatestWhileProducing(t *testing.T) {
	const topic, group = "latest-live", "g-latest-live"
	addr := newCluster(t, 1, topic)
	produce(t, addr, topic, 0, seqValues(0, 0, 20)...)

	var (
		written  atomic.Int64 // messages written so far
		started  = make(chan struct{})
		stop     = make(chan struct{})
		lastSeq  = make(chan int, 1) // the last seq written, once done
		prodErrs = make(chan error, 1)
	)
	written.Store(20)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		conn, err := kafka.DialLeader(ctx, "tcp", addr, topic, 0)
		if err != nil {
			prodErrs <- err
			return
		}
		defer conn.Close()
		more := -1 // messages still to write once the member got one
		for seq := 20; more != 0; seq++ {
			select {
			case <-started:
				if more < 0 {
					more = 50
				}
			case <-stop:
				return
			default:
			}
			_ = conn.SetWriteDeadline(time.Now().Add(time.Minute))
			if _, err := conn.WriteMessages(kafka.Message{Value: []byte(fmt.Sprintf("p0-%d", seq))}); err != nil {
				prodErrs <- err
				return
			}
			written.Add(1)
			if more > 0 {
				more--
			}
		}
		lastSeq <- int(written.Load()) - 1
	}()
	defer close(stop)

	cfg := testConfig(addr, topic, group)
	cfg.Start = "latest"
	s := newSource(t, cfg)
	defer closeSource(t, s)
	var got []int
	last := -1
	for last < 0 || got[len(got)-1] < last {
		b := next(t, s)
		for _, v := range values(b) {
			_, seq := parseValue(t, v)
			if len(got) > 0 && seq != got[len(got)-1]+1 {
				t.Fatalf("after seq %d got %d: a message was skipped or reordered", got[len(got)-1], seq)
			}
			got = append(got, seq)
		}
		ack(t, b)
		if len(got) == 0 {
			continue
		}
		if len(got) == len(values(b)) {
			close(started) // first messages: the writer stops after 50 more
		}
		if last < 0 && int64(got[len(got)-1]) >= written.Load()-1 {
			// Caught up with everything written so far: wait for the
			// writer to finish before asking for more.
			select {
			case last = <-lastSeq:
			case err := <-prodErrs:
				t.Fatalf("produce: %v", err)
			case <-time.After(3 * time.Minute):
				t.Fatal("writer did not finish")
			}
		}
	}
	t.Logf("started at seq %d, delivered %d messages through %d", got[0], len(got), last)
}

func TestNackStops(t *testing.T) {
	const topic, group = "nack", "g-nack"
	addr := newCluster(t, 1, topic)
	produce(t, addr, topic, 0, seqValues(0, 0, 5)...)
	s := newSource(t, testConfig(addr, topic, group))
	b := next(t, s)
	if err := b.Ack(context.Background(), errors.New("sink down")); err != nil {
		t.Fatalf("ack: %v", err)
	}
	if err := b.Ack(context.Background(), nil); err == nil {
		t.Error("second ack: no error")
	}
	if _, err := s.Next(context.Background()); err == nil || !strings.Contains(err.Error(), "sink down") {
		t.Errorf("next after nack: %v", err)
	}
	closeSource(t, s)
	if c := committed(t, addr, group, topic, 1)[0]; c > 0 {
		t.Errorf("committed %d after a nack", c)
	}
}

func TestTopicRegex(t *testing.T) {
	addr := newCluster(t, 1, "rx-a", "rx-b", "other")
	produce(t, addr, "rx-a", 0, "a")
	produce(t, addr, "rx-b", 0, "b")
	produce(t, addr, "other", 0, "o")
	cfg := testConfig(addr, "", "g-rx")
	cfg.Topics, cfg.TopicRegex = nil, "rx-.*"
	s := newSource(t, cfg)
	var vs []string
	for len(vs) < 2 {
		b := next(t, s)
		vs = append(vs, values(b)...)
		ack(t, b)
	}
	slices.Sort(vs)
	if !slices.Equal(vs, []string{"a", "b"}) {
		t.Errorf("got %q", vs)
	}
	closeSource(t, s)
}

// TestGroupShares runs two members of one group. Together they see every
// message at least once; a partition is never being applied by both at
// once (the old owner's in-flight batches are acked before the new owner
// fetches), and each partition's applied sequence never skips ahead. A
// message may be applied twice (at-least-once); sinks are idempotent.
func TestGroupShares(t *testing.T) {
	const topic, group, parts, half = "share", "g-share", 4, 200
	addr := newCluster(t, parts, topic)
	for p := range parts {
		produce(t, addr, topic, p, seqValues(p, 0, half)...)
	}

	var (
		mu       sync.Mutex
		busy     = map[int]string{} // partition -> member applying it
		applied  = map[int]int{}    // partition -> highest seq applied + 1
		seen     = map[[2]int]bool{}
		byMember = map[string]int{}
		failure  error
	)
	fail := func(err error) {
		if failure == nil {
			failure = err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	run := func(name string, s *Source) {
		defer wg.Done()
		for {
			b, err := s.Next(ctx)
			if err != nil {
				return
			}
			mu.Lock()
			inBatch := map[int]bool{}
			for _, v := range values(b) {
				p, seq := parseValue(t, v)
				if owner, ok := busy[p]; ok && owner != name && !inBatch[p] {
					fail(fmt.Errorf("partition %d applied by %s and %s at once", p, owner, name))
				}
				busy[p] = name
				inBatch[p] = true
				if seq > applied[p] {
					fail(fmt.Errorf("partition %d skipped from %d to %d", p, applied[p], seq))
				}
				applied[p] = max(applied[p], seq+1)
				seen[[2]int{p, seq}] = true
				byMember[name]++
			}
			mu.Unlock()
			// Hold the batch a little so the batches of both members overlap.
			time.Sleep(time.Millisecond)
			mu.Lock()
			for p := range inBatch {
				delete(busy, p)
			}
			mu.Unlock()
			_ = b.Ack(ctx, nil)
		}
	}
	a := newSource(t, testConfig(addr, topic, group))
	am := metrics.New()
	a.Instrument(am)
	wg.Add(1)
	go run("a", a)
	waitFor(t, "a consumed the first half", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) >= parts*half/2
	})
	b := newSource(t, testConfig(addr, topic, group))
	wg.Add(1)
	go run("b", b)
	waitFor(t, "both members own partitions", func() bool {
		a.mu.Lock()
		na := len(a.parts)
		a.mu.Unlock()
		b.mu.Lock()
		nb := len(b.parts)
		b.mu.Unlock()
		return na > 0 && nb > 0 && na+nb == parts
	})
	for p := range parts {
		produce(t, addr, topic, p, seqValues(p, half, 2*half)...)
	}
	waitFor(t, "every message seen", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == parts*2*half
	})
	closeSource(t, a)
	closeSource(t, b)
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if failure != nil {
		t.Fatal(failure)
	}
	if byMember["b"] == 0 {
		t.Errorf("member b applied nothing: %v", byMember)
	}
	if n := gathered(t, am, "rowsync_kafka_rebalances_total"); n < 1 {
		t.Errorf("a counted %v rebalances, want at least 1 (b joined)", n)
	}
	t.Logf("applied per member: %v (%d messages)", byMember, parts*2*half)
}

func TestCloseLeaksNothing(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const topic, group = "leak", "g-leak"
	c, err := kfake.NewCluster(kfake.Ports(0), kfake.SeedTopics(2, topic))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	addr := c.ListenAddrs()[0]
	produce(t, addr, topic, 0, seqValues(0, 0, 30)...)
	s := newSource(t, testConfig(addr, topic, group))
	for n := 0; n < 30; {
		b := next(t, s)
		n += len(b.Events)
		ack(t, b)
	}
	closeSource(t, s)
	if _, err := s.Next(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("next after close: %v", err)
	}
	// A source closed before it ever started has nothing to stop.
	closeSource(t, newSource(t, testConfig(addr, topic, group)))
	c.Close()
}

func TestValidate(t *testing.T) {
	ok := Config{Brokers: []string{"h:9092"}, Topics: []string{"t"}}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want []string // substrings, each expected
	}{
		{"ok", func(*Config) {}, nil},
		{"no brokers", func(c *Config) { c.Brokers = nil }, []string{"brokers: required"}},
		{"no port", func(c *Config) { c.Brokers = []string{"h"} }, []string{"brokers[0]: "}},
		{"no topics", func(c *Config) { c.Topics = nil }, []string{"topics: "}},
		{"both", func(c *Config) { c.TopicRegex = "x" }, []string{"topic_regex: set either"}},
		{"bad regex", func(c *Config) { c.Topics, c.TopicRegex = nil, "(" }, []string{"topic_regex: bad regex"}},
		{"start", func(c *Config) { c.Start = "middle" }, []string{`start: "middle"`}},
		{"negatives", func(c *Config) { c.BatchSize, c.MaxWait = -1, -1 }, []string{"batch_size:", "max_wait:"}},
		{"revoke", func(c *Config) { c.RevokeTimeout = time.Minute }, []string{"revoke_timeout:"}},
		{"heartbeat", func(c *Config) { c.HeartbeatInterval = time.Minute }, []string{"heartbeat_interval:"}},
		{"sasl", func(c *Config) { c.SASL = SASLConfig{Mechanism: "gssapi"} }, []string{"sasl.mechanism:", "sasl.username: required"}},
		{"sasl both pw", func(c *Config) {
			c.SASL = SASLConfig{Mechanism: "scram-sha-512", Username: "u", Password: "p", PasswordFile: "f"}
		}, []string{"sasl.password_file:"}},
		{"tls key", func(c *Config) { c.TLS = TLSConfig{Enabled: true, CertFile: "c"} }, []string{"tls.cert_file:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mod(&c)
			err := c.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestRevokeWaitsForInflight: when a rebalance takes a partition away, the
// old owner hands out none of its buffered messages, waits for the batch
// still in flight, commits its watermark, and only then does the group
// move on; whoever owns the partition next starts right after that batch.
func TestRevokeWaitsForInflight(t *testing.T) {
	const topic, group = "revoke", "g-revoke"
	addr := newCluster(t, 1, topic)
	produce(t, addr, topic, 0, seqValues(0, 0, 100)...)

	a := newSource(t, testConfig(addr, topic, group))
	held := next(t, a) // in flight, not acked
	_, end := parseValue(t, values(held)[len(values(held))-1])
	a.mu.Lock()
	gen := a.parts[0].gen
	a.mu.Unlock()

	b := newSource(t, testConfig(addr, topic, group))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type first struct {
		member string
		seq    int
	}
	firsts := make(chan first, 2)
	consume := func(name string, s *Source) {
		for {
			bt, err := s.Next(ctx)
			if err != nil {
				return
			}
			if vs := values(bt); len(vs) > 0 {
				_, seq := parseValue(t, vs[0])
				firsts <- first{name, seq}
				return // leave the batch unacked; the test is over
			}
			_ = bt.Ack(ctx, nil)
		}
	}
	go consume("b", b)
	waitFor(t, "a's partition revoked", func() bool {
		p := gen.parts[0]
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.revoked
	})
	// The rebalance cannot complete while a drains: nobody has been handed
	// anything new.
	select {
	case f := <-firsts:
		t.Fatalf("%s got seq %d while a still held its batch", f.member, f.seq)
	default:
	}
	go consume("a", a)
	ack(t, held)
	f := <-firsts
	if f.seq != end+1 {
		t.Errorf("%s resumed at seq %d, want %d (right after the acked batch)", f.member, f.seq, end+1)
	}
	if c := committed(t, addr, group, topic, 1)[0]; c < int64(end+1) {
		t.Errorf("committed %d, want >= %d", c, end+1)
	}
	cancel()
	closeSource(t, a)
	closeSource(t, b)
}

// gathered returns the value of the metric name (summed over its series).
func gathered(t testing.TB, m *metrics.Metrics, name string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var v float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, mt := range mf.GetMetric() {
			v += mt.GetCounter().GetValue() + mt.GetGauge().GetValue()
		}
	}
	return v
}

// TestTopicRecreatedIsNotSilent deletes and recreates the topic under a
// member that has read it: the new log's offsets restart below what was
// read. Whichever way the member finds out — a rebalance (the new owner
// applies the start policy) or its fetcher reconnecting (the source fails
// and asks for a restart) — the new messages must not be dropped
// silently: Next either delivers them or returns an error.
func TestTopicRecreatedIsNotSilent(t *testing.T) {
	const topic, group = "recreate", "g-recreate"
	addr := newCluster(t, 1, topic)
	produce(t, addr, topic, 0, seqValues(0, 0, 20)...)
	s := newSource(t, testConfig(addr, topic, group))
	defer closeSource(t, s)
	for n := 0; n < 20; {
		b := next(t, s)
		n += len(b.Events)
		ack(t, b)
	}
	conn, err := kafka.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.DeleteTopics(topic); err != nil {
		t.Fatalf("delete topic: %v", err)
	}
	waitFor(t, "topic recreated", func() bool {
		return conn.CreateTopics(kafka.TopicConfig{Topic: topic, NumPartitions: 1, ReplicationFactor: 1}) == nil
	})
	produce(t, addr, topic, 0, "new-0", "new-1", "new-2")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var got []string
	for len(got) < 3 {
		b, err := s.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				t.Fatalf("the recreated topic's messages never came and the source never failed (got %q)", got)
			}
			t.Logf("source failed loudly: %v", err)
			return
		}
		got = append(got, values(b)...)
		ack(t, b)
	}
	if !slices.Equal(got, []string{"new-0", "new-1", "new-2"}) {
		t.Fatalf("after recreation got %q", got)
	}
	t.Log("the group rebalanced and read the recreated topic from the start")
}

// countingDecoder is testDecoder that counts the messages it decoded.
type countingDecoder struct{ n *atomic.Int64 }

func (d countingDecoder) Decode(m decode.Message) ([]cdc.Event, error) {
	d.n.Add(1)
	return testDecoder{}.Decode(m)
}

// TestReadAheadBound checks that the partition fetchers together decode at
// most read_ahead messages ahead of Next, whatever the partitions, and that
// a read_ahead below batch_size still delivers everything in order.
func TestReadAheadBound(t *testing.T) {
	const topic, group, parts, per, ahead = "ahead", "g-ahead", 3, 57, 5
	addr := newCluster(t, parts, topic)
	for p := range parts {
		produce(t, addr, topic, p, seqValues(p, 0, per)...)
	}
	cfg := testConfig(addr, topic, group)
	cfg.BatchSize = 16
	cfg.ReadAhead = ahead
	var decoded atomic.Int64
	s, err := New(cfg, countingDecoder{&decoded}, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer closeSource(t, s)
	nextSeq := map[int]int{}
	taken := int64(0)
	for taken < parts*per {
		if taken > 0 {
			// let the fetchers run up to the bound before looking
			waitFor(t, "the read-ahead to fill", func() bool {
				return decoded.Load()-taken >= min(ahead, parts*per-taken)
			})
		}
		if d := decoded.Load(); d-taken > ahead {
			t.Fatalf("%d messages decoded, %d taken: %d ahead of Next, read_ahead %d", d, taken, d-taken, ahead)
		}
		b := next(t, s)
		for _, v := range values(b) {
			p, seq := parseValue(t, v)
			if seq != nextSeq[p] {
				t.Fatalf("partition %d: got seq %d, want %d", p, seq, nextSeq[p])
			}
			nextSeq[p]++
			taken++
		}
		ack(t, b)
	}
}

// TestRecycledChunksLeaveBatchesIntact drains partitions whose chunks Next
// merges into batches and recycles for the fetchers (and, with batch_size
// at the chunk size, hands out whole as batches), acking every other batch
// at once and holding the rest unacked to the end: no unacked batch's
// events change after Next returned them although the acked batches'
// memory is reused for later ones (checked), and every message arrives
// once and in order per partition.
func TestRecycledChunksLeaveBatchesIntact(t *testing.T) {
	const parts, per = 3, 700
	for _, tc := range []struct {
		name             string
		batch, readAhead int
		merged           bool // some batch must merge chunks
	}{
		// chunks of 64 (minChunk), read-ahead for two per partition
		{"merged chunks", 200, 150, true},
		{"one chunk per batch", minChunk, 150, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topic := "recycle-" + strings.ReplaceAll(tc.name, " ", "-")
			addr := newCluster(t, parts, topic)
			for p := range parts {
				produce(t, addr, topic, p, seqValues(p, 0, per)...)
			}
			cfg := testConfig(addr, topic, "g-"+topic)
			cfg.BatchSize = tc.batch
			cfg.ReadAhead = tc.readAhead
			s := newSource(t, cfg)
			defer closeSource(t, s)
			type held struct {
				b    cdc.Batch
				seen []string
			}
			var batches []held
			nextSeq := map[int]int{}
			// the first event of each acked batch: a later batch starting at
			// one of them got the acked batch's memory
			acked := map[*cdc.Event]bool{}
			reused := false
			for total := 0; total < parts*per; {
				b := next(t, s)
				vs := values(b)
				for _, v := range vs {
					p, seq := parseValue(t, v)
					if seq != nextSeq[p] {
						t.Fatalf("partition %d: got seq %d, want %d", p, seq, nextSeq[p])
					}
					nextSeq[p]++
				}
				total += len(vs)
				if len(b.Events) > 0 {
					reused = reused || acked[&b.Events[0]]
				}
				if len(batches)%2 == 0 {
					ack(t, b) // its memory may now be reused: not checked below
					if len(b.Events) > 0 {
						acked[&b.Events[0]] = true
					}
				}
				batches = append(batches, held{b, vs})
			}
			merged := false
			for i, h := range batches {
				merged = merged || len(h.seen) > minChunk
				if i%2 == 0 {
					continue // acked
				}
				if got := values(h.b); !slices.Equal(got, h.seen) {
					t.Fatalf("batch %d changed after Next returned it: %v, was %v", i, got, h.seen)
				}
				ack(t, h.b)
			}
			if tc.merged && !merged {
				t.Fatalf("no batch merged chunks (%d batches): recycling is not exercised", len(batches))
			}
			if !reused {
				t.Fatalf("no batch reused an acked batch's events (%d batches)", len(batches))
			}
		})
	}
}
