package kafka

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/source/decode"
)

// benchDecoder makes one small event per message and nothing else.
type benchDecoder struct{}

func (benchDecoder) Decode(m decode.Message) ([]cdc.Event, error) {
	return []cdc.Event{{DB: "db", Table: "t", Op: cdc.Update}}, nil
}

const (
	benchParts = 4
	benchMsgs  = 200_000
)

// benchTopic pre-produces benchMsgs ~100-byte messages over benchParts
// partitions of a fresh kfake cluster.
func benchTopic(b *testing.B) (addr, topic string) {
	b.Helper()
	topic = "drain"
	addr = newCluster(b, benchParts, topic)
	payload := `{"id":%d,"name":"user-%d","email":"u%d@example.com","balance":"12.50","v":1}`
	for p := range benchParts {
		vs := make([]string, 0, benchMsgs/benchParts)
		for i := range benchMsgs / benchParts {
			vs = append(vs, fmt.Sprintf(payload, i, i, i))
		}
		produce(b, addr, topic, p, vs...)
	}
	return addr, topic
}

// BenchmarkDrain measures messages/s through Next+Ack of a topic written
// while the consumer was stopped, with a trivial decoder.
func BenchmarkDrain(b *testing.B) {
	addr, topic := benchTopic(b)
	b.ResetTimer()
	var total int
	var elapsed, startup time.Duration
	for i := 0; i < b.N; i++ {
		cfg := Config{Brokers: []string{addr}, Topics: []string{topic}, Group: fmt.Sprintf("bench-%d", i)}
		s, err := New(cfg, benchDecoder{}, nil)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		n := 0
		for n < benchMsgs {
			bt, err := s.Next(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			if n == 0 {
				startup += time.Since(start)
			}
			n += len(bt.Events) + len(bt.Rejects)
			if err := bt.Ack(context.Background(), nil); err != nil {
				b.Fatal(err)
			}
		}
		elapsed += time.Since(start)
		total += n
		if err := s.Close(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	// msgs/s counts from New (group join included); first_batch_ms is the
	// join and first fetch alone.
	b.ReportMetric(float64(total)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(startup.Milliseconds())/float64(b.N), "first_batch_ms")
}

// BenchmarkDrainReader is the naive baseline: kafka-go's Reader with a
// GroupID, one FetchMessage per message, CommitMessages per 4096 messages
// (committed asynchronously every second).
func BenchmarkDrainReader(b *testing.B) {
	addr, topic := benchTopic(b)
	b.ResetTimer()
	var total int
	var elapsed time.Duration
	for i := 0; i < b.N; i++ {
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers: []string{addr}, Topic: topic, GroupID: fmt.Sprintf("bench-reader-%d", i),
			MaxBytes: 4 << 20, CommitInterval: time.Second, StartOffset: kafka.FirstOffset,
		})
		start := time.Now()
		var pending []kafka.Message
		for n := 0; n < benchMsgs; n++ {
			m, err := r.FetchMessage(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			if _, err := (benchDecoder{}).Decode(decode.Message{Value: m.Value}); err != nil {
				b.Fatal(err)
			}
			pending = append(pending, m)
			if len(pending) == 4096 {
				if err := r.CommitMessages(context.Background(), pending...); err != nil {
					b.Fatal(err)
				}
				pending = pending[:0]
			}
		}
		if err := r.CommitMessages(context.Background(), pending...); err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(start)
		total += benchMsgs
		_ = r.Close()
	}
	b.ReportMetric(float64(total)/elapsed.Seconds(), "msgs/s")
}
