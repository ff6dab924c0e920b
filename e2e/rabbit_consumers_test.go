package e2e

// Issue 15: several consumers of one RabbitMQ queue.
//
// RabbitMQ keeps a queue's order for one consumer only: with several it
// deals the messages out round-robin, each consumer's batches reach the
// pipeline when they close, and a later change of a row can be applied
// before an earlier one. rowsync allows source.rabbitmq.consumers > 1 only
// with a version guard on every table (or unordered: true). The test runs
// the rowsync binary with four consumers and small batches over a queue of
// hot rows (many changes each):
//
//   - version guard (canal-protobuf header positions, version_field: _v):
//     at the moment the broker shows every message acked, the Redis state
//     is already exact and every row deleted at the end has its tombstone
//     (acks come only after the sink wrote; nothing lost, no older change
//     won).
//   - unordered (canal-json, unordered: true): measured, not asserted; the
//     rows the reordering got wrong are logged for the README.

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/internal/changegen"
)

func TestRabbitConsumers(t *testing.T) {
	n := size(20000, 100000)
	set := changegen.Generate(changegen.Config{Seed: 1500, Changes: n, Keys: max(50, n/400), Partitions: 1,
		DB: fmt.Sprintf("rs_consumers_%d", time.Now().UnixNano()%1e9)})
	for _, m := range []chaosMode{
		{name: "version-guard", encoding: changegen.EncCanalProtobuf, guard: true,
			version: func(c *changegen.Change) uint64 {
				return cdc.BinlogPosVersion(changegen.BinlogFile, c.Offset()+40) // the row entry's header
			}},
		{name: "unordered", encoding: changegen.EncCanalJSON},
	} {
		t.Run(m.name, func(t *testing.T) {
			rdb := redisDB(t, rabbitDB)
			s := newSetup(t, "rc-"+m.name)
			parts, err := set.Stream(m.encoding)
			if err != nil {
				t.Fatal(err)
			}
			r := startRabbit(t, s.name)
			r.publish(t, flatten(parts))
			p := rowsync(t, s.consumersConfig(set, m), s.log)
			start := time.Now()
			waitAcked(t, s.name, p)
			drain := time.Since(start).Round(time.Millisecond)

			// Everything is acked: the sinks wrote it all before.
			res := measure(t, rdb, s.prefix, set.Expected(s.prefix), m.guard)
			res.mode, res.drain = m.name+" (4 consumers)", drain
			p.stop(t)
			if dl := readDeadLetters(t, s.dl); len(dl) > 0 {
				t.Errorf("%d dead letters, first: %+v", len(dl), dl[0])
			}
			t.Logf("%d changes (Keys %d) → %d messages: %s", n, set.Config.Keys, len(parts[0]), res)
			if !m.guard {
				return
			}
			if res.missing+res.stale+res.revived > 0 {
				t.Errorf("end state not exact once every message was acked: %s", res)
			}
			checkTombstones(t, rdb, s.prefix, set, m)
		})
	}
}

// consumersConfig is a RabbitMQ source with four consumers of small
// batches (so their batches interleave) and the set's tables, guarded in
// guard mode.
func (s *setup) consumersConfig(set *changegen.Set, m chaosMode) string {
	var b strings.Builder
	b.WriteString(s.rabbitHeadYAML(s.name, changegen.Decoder(m.encoding)))
	b.WriteString("    consumers: 4\n    batch_size: 32\n    prefetch: 128\n")
	if !m.guard {
		b.WriteString("    unordered: true\n")
	}
	fmt.Fprintf(&b, "redis:\n  addr: 127.0.0.1:6379\n  db: %d\n", rabbitDB)
	b.WriteString(processYAML(s.dl))
	b.WriteString("tables:\n")
	for _, tb := range set.Tables {
		fmt.Fprintf(&b, "  - match: '%s\\.%s'\n    pk: [%s]\n", tb.DB, tb.Name, strings.Join(tb.PK, ", "))
		fmt.Fprintf(&b, "    redis_hash:\n      key: '%s{db}_{table}_{pk}'\n", s.prefix)
		if m.guard {
			fmt.Fprintf(&b, "      version_field: %s\n", versionField)
		}
	}
	return writeFile(s.t, s.dir, "rowsync.yaml", b.String())
}

// waitAcked waits until the broker holds no message of queue, ready or
// unacknowledged, while rowsync runs.
func waitAcked(t *testing.T, queue string, p *proc) {
	t.Helper()
	waitFor(t, "every message acked", time.Duration(size(4, 10))*time.Minute, func() (bool, string) {
		if p.exited() {
			t.Fatalf("rowsync exited: %v", p.err)
		}
		out, err := rabbitmqctl("list_queues", "-q", "--no-table-headers", "name", "messages_ready", "messages_unacknowledged")
		if err != nil {
			return false, fmt.Sprintf("rabbitmqctl: %v: %s", err, out)
		}
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) != 3 || f[0] != queue {
				continue
			}
			ready, _ := strconv.Atoi(f[1])
			unacked, _ := strconv.Atoi(f[2])
			return ready == 0 && unacked == 0, fmt.Sprintf("%d ready, %d unacked", ready, unacked)
		}
		return false, "queue not listed"
	})
}
