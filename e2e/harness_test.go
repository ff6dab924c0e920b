package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/rowsync/rowsync/internal/changegen"
)

const rabbitURL = "amqp://guest:guest@127.0.0.1:5672/"

// setup is one test's files and names.
type setup struct {
	t      *testing.T
	dir    string
	name   string // pipeline name, topic/queue/group suffix
	prefix string // Redis key prefix
	log    string
	dl     string
}

func newSetup(t *testing.T, name string) *setup {
	t.Helper()
	dir := t.TempDir()
	name = fmt.Sprintf("e2e-%s-%d", name, time.Now().UnixNano()%1e9)
	s := &setup{t: t, dir: dir, name: name, prefix: name + ":",
		log: filepath.Join(dir, "rowsync.log"), dl: filepath.Join(dir, "deadletter.jsonl")}
	showLogOnFailure(t, s.log)
	return s
}

// tablesYAML maps the generated tables to Redis hashes under the prefix.
func (s *setup) tablesYAML() string {
	var b strings.Builder
	b.WriteString("tables:\n")
	for _, tb := range changegen.Tables {
		fmt.Fprintf(&b, "  - match: '%s\\.%s'\n    pk: [%s]\n    redis_hash:\n      key: '%s{db}_{table}_{pk}'\n",
			tb.DB, tb.Name, strings.Join(tb.PK, ", "), s.prefix)
	}
	return b.String()
}

func (s *setup) commonYAML(db int) string {
	return fmt.Sprintf("redis:\n  addr: 127.0.0.1:6379\n  db: %d\n", db) + processYAML(s.dl) + s.tablesYAML()
}

// processYAML is the dead letter file, admin (off) and log blocks of a
// test config.
func processYAML(deadletter string) string {
	return fmt.Sprintf(`deadletter:
  file: %s
admin:
  addr: "off"
log:
  level: info
`, deadletter)
}

// --- Kafka (kfake in-process) ---

type kafkaEnv struct {
	addr, topic string
	partitions  int
}

func startKafka(t *testing.T, topic string, partitions int) *kafkaEnv {
	t.Helper()
	c, err := kfake.NewCluster(kfake.Ports(0), kfake.SeedTopics(int32(partitions), topic))
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return &kafkaEnv{addr: c.ListenAddrs()[0], topic: topic, partitions: partitions}
}

// produce writes each partition's messages to it, in order.
func (k *kafkaEnv) produce(t *testing.T, parts [][]changegen.Message) {
	t.Helper()
	if len(parts) != k.partitions {
		t.Fatalf("%d partitions of messages for a %d-partition topic", len(parts), k.partitions)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for p, msgs := range parts {
		conn, err := kafka.DialLeader(ctx, "tcp", k.addr, k.topic, p)
		if err != nil {
			t.Fatalf("dial leader: %v", err)
		}
		for len(msgs) > 0 {
			// stay well below the broker's 1 MiB batch limit
			var batch []kafka.Message
			bytes := 0
			for _, m := range msgs {
				if len(batch) == 1000 || len(batch) > 0 && bytes+len(m.Key)+len(m.Value) > 256<<10 {
					break
				}
				bytes += len(m.Key) + len(m.Value)
				batch = append(batch, kafka.Message{Key: m.Key, Value: m.Value})
			}
			n := len(batch)
			_ = conn.SetWriteDeadline(time.Now().Add(time.Minute))
			if _, err := conn.WriteMessages(batch...); err != nil {
				conn.Close()
				t.Fatalf("produce partition %d: %v", p, err)
			}
			msgs = msgs[n:]
		}
		conn.Close()
	}
}

// committed returns the group's committed offset per partition (-1: none).
func (k *kafkaEnv) committed(group string) (map[int]int64, error) {
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	cl := &kafka.Client{Addr: kafka.TCP(k.addr), Transport: tr, Timeout: 30 * time.Second}
	ps := make([]int, k.partitions)
	for i := range ps {
		ps[i] = i
	}
	resp, err := cl.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{
		GroupID: group, Topics: map[string][]int{k.topic: ps}})
	if err != nil {
		return nil, err
	}
	out := map[int]int64{}
	for _, p := range resp.Topics[k.topic] {
		out[p.Partition] = p.CommittedOffset
	}
	return out, nil
}

// waitCommittedEnd waits until the group has committed every partition's
// end (ends[p] = number of messages produced to p).
func (k *kafkaEnv) waitCommittedEnd(t *testing.T, group string, ends []int) {
	t.Helper()
	waitFor(t, "committed offsets reach the end", 2*time.Minute, func() (bool, string) {
		c, err := k.committed(group)
		if err != nil {
			return false, err.Error()
		}
		for p, end := range ends {
			if c[p] != int64(end) {
				return false, fmt.Sprintf("committed %v, ends %v", c, ends)
			}
		}
		return true, ""
	})
}

func (s *setup) kafkaConfig(k *kafkaEnv, format string) string {
	return writeFile(s.t, s.dir, "rowsync.yaml", s.kafkaHeadYAML(k, format)+s.commonYAML(kafkaDB))
}

// kafkaHeadYAML is the name and the Kafka source block of a test config,
// with short group timings so rebalances in tests are quick.
func (s *setup) kafkaHeadYAML(k *kafkaEnv, format string) string {
	return fmt.Sprintf(`name: %s
source:
  kafka:
    brokers: [%s]
    topics: [%s]
    group: %s
    format: %s
    commit_interval: 100ms
    heartbeat_interval: 500ms
    session_timeout: 6s
    rebalance_timeout: 6s
    revoke_timeout: 2s
`, s.name, k.addr, k.topic, s.name, format)
}

// --- RabbitMQ (the machine's server) ---

type rabbitEnv struct {
	conn  *amqp.Connection
	queue string
}

// startRabbit declares a durable queue for the test and deletes it at the
// end.
func startRabbit(t *testing.T, queue string) *rabbitEnv {
	t.Helper()
	conn, err := amqp.Dial(rabbitURL)
	if err != nil {
		t.Fatalf("amqp dial: %v", err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		t.Fatalf("declare %s: %v", queue, err)
	}
	r := &rabbitEnv{conn: conn, queue: queue}
	t.Cleanup(func() {
		// the connection may have been closed by a server restart
		c, err := amqp.Dial(rabbitURL)
		if err == nil {
			if ch, err := c.Channel(); err == nil {
				ch.QueueDelete(queue, false, false, false)
			}
			c.Close()
		}
		r.conn.Close()
	})
	return r
}

// publish sends msgs to the queue through the default exchange, with
// publisher confirms, so they are all enqueued when it returns.
func (r *rabbitEnv) publish(t *testing.T, msgs []changegen.Message) {
	t.Helper()
	conn, err := amqp.Dial(rabbitURL)
	if err != nil {
		t.Fatalf("amqp dial: %v", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var pending []*amqp.DeferredConfirmation
	flush := func() {
		for _, dc := range pending {
			ok, err := dc.WaitContext(ctx)
			if err != nil || !ok {
				t.Fatalf("publish not confirmed: %v", err)
			}
		}
		pending = pending[:0]
	}
	for _, m := range msgs {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", r.queue, false, false,
			amqp.Publishing{Body: m.Value, DeliveryMode: amqp.Persistent, ContentType: "text/plain"})
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
		pending = append(pending, dc)
		if len(pending) == 2000 {
			flush()
		}
	}
	flush()
}

// depth returns the queue's ready message count (unacked excluded).
func (r *rabbitEnv) depth() (int, int, error) {
	conn, err := amqp.Dial(rabbitURL)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return 0, 0, err
	}
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(r.queue, true, false, false, false, nil)
	if err != nil {
		return 0, 0, err
	}
	return q.Messages, q.Consumers, nil
}

// waitEmpty waits until the queue holds no ready messages; with the end
// state reached and rowsync stopped cleanly, nothing is unacked either.
func (r *rabbitEnv) waitEmpty(t *testing.T) {
	t.Helper()
	waitFor(t, "queue empty", 2*time.Minute, func() (bool, string) {
		n, c, err := r.depth()
		if err != nil {
			return false, err.Error()
		}
		return n == 0, fmt.Sprintf("%d ready, %d consumers", n, c)
	})
}

func (s *setup) rabbitConfig(queue, format string) string {
	return writeFile(s.t, s.dir, "rowsync.yaml", s.rabbitHeadYAML(queue, format)+s.commonYAML(rabbitDB))
}

// rabbitHeadYAML is the name and the RabbitMQ source block of a test
// config, with quick reconnects.
func (s *setup) rabbitHeadYAML(queue, format string) string {
	return fmt.Sprintf(`name: %s
source:
  rabbitmq:
    url: %s
    queue: %s
    format: %s
    connection_name: %s
    reconnect:
      min: 100ms
      max: 2s
`, s.name, rabbitURL, queue, format, s.name)
}

// --- dead letter ---

type deadLetter struct {
	Stage  string `json:"stage"`
	Reason string `json:"reason"`
	Pos    string `json:"pos"`
	Raw    []byte `json:"raw"`
}

func readDeadLetters(t *testing.T, path string) []deadLetter {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []deadLetter
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var d deadLetter
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			t.Fatalf("dead letter line %q: %v", sc.Text(), err)
		}
		out = append(out, d)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// flatten concatenates partitions (RabbitMQ has one queue).
func flatten(parts [][]changegen.Message) []changegen.Message {
	var out []changegen.Message
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func counts(parts [][]changegen.Message) []int {
	n := make([]int, len(parts))
	for i, p := range parts {
		n[i] = len(p)
	}
	return n
}
