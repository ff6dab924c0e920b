package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rowsync/rowsync/internal/changegen"
)

// TestKafkaScaleOut grows and shrinks a consumer group under load, as a
// user does to scale past one machine: three rowsync processes share a
// 6-partition topic; while changes keep arriving one is SIGKILLed (its
// partitions wait for its session to expire, then move) and a fourth
// joins. The end state must be exact and every partition committed to its
// end. Per-key order: changegen partitions by primary key, and a
// partition is applied by one member at a time (a member gives a
// partition up only after its in-flight batches are acked and committed,
// or, when killed, the next owner re-reads from the last commit, replaying
// the key's changes in order), so the last change of every key is the one
// its hash shows. The time each rebalance took is logged
// (rowsync_kafka_rebalance_seconds in /metrics), not asserted.
//
// 20,000 changes by default; 100,000 with -long (ROWSYNC_LONG=1).
func TestKafkaScaleOut(t *testing.T) {
	const parts = 6
	rdb := redisDB(t, kafkaDB)
	s := newSetup(t, "k-scale")
	n := size(20000, 100000)
	set := changegen.Generate(changegen.Config{Seed: 600, Changes: n, Keys: min(5000, max(100, n/4)), Partitions: parts})
	msgs, err := set.Stream(changegen.EncCanalJSON)
	if err != nil {
		t.Fatal(err)
	}
	want := set.Expected(s.prefix)
	k := startKafka(t, s.name, parts)
	cfg := s.kafkaConfig(k, "canal-json")

	// Messages go out in three waves so that the kill and the join happen
	// while changes flow.
	wave := func(i int) [][]changegen.Message {
		out := make([][]changegen.Message, parts)
		for p, m := range msgs {
			out[p] = m[len(m)*i/3 : len(m)*(i+1)/3]
		}
		return out
	}
	logs := make([]string, 4)
	start := func(i int) *proc {
		logs[i] = filepath.Join(s.dir, fmt.Sprintf("rowsync-%d.log", i+1))
		showLogOnFailure(t, logs[i])
		return rowsync(t, cfg, logs[i])
	}
	k.produce(t, wave(0))
	procs := []*proc{start(0), start(1), start(2)}
	waitFor(t, "the group applying the first wave", 3*time.Minute, func() (bool, string) {
		size, err := rdb.DBSize(context.Background()).Result()
		return err == nil && size >= int64(len(want)/4), fmt.Sprintf("%d keys, %v", size, err)
	})
	k.produce(t, wave(1))
	procs[0].kill() // its partitions are re-read from their last commit
	procs = append(procs, start(3))
	k.produce(t, wave(2))

	waitState(t, rdb, s.prefix, want, 4*time.Minute, nil)
	for i, p := range procs[1:] {
		if p.exited() {
			t.Fatalf("rowsync %d exited: %v", i+2, p.err)
		}
	}
	k.waitCommittedEnd(t, s.name, counts(msgs))
	for _, p := range procs[1:] {
		p.stop(t)
	}
	if dl := readDeadLetters(t, s.dl); len(dl) > 0 {
		t.Errorf("%d dead letters, first: %+v", len(dl), dl[0])
	}
	t.Logf("%d changes, %d rows at the end, %d partitions, 3 members, one killed, one joined", n, len(want), parts)
	took := regexp.MustCompile(`generation=(\d+) .*partitions=(\d+) rebalance_took=(\S+)`)
	for i, path := range logs {
		b, _ := os.ReadFile(path)
		for _, line := range strings.Split(string(b), "\n") {
			if m := took.FindStringSubmatch(line); m != nil {
				t.Logf("rowsync %d: generation %s, %s partitions, rebalance took %s", i+1, m[1], m[2], m[3])
			}
		}
	}
}
