package deadletter

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

func TestFileAppendsDurableJSONLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "dl.jsonl")
	w, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	recs := []Record{{Stage: "decode", Reason: "bad json", Pos: "t/0@1", Raw: []byte{0, 0xff}},
		{Stage: "redis", Reason: "WRONGTYPE", DB: "shop", Table: "users", Op: "update", Event: json.RawMessage(`{"a":1}`)}}
	if err := w.Write(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	w.Close()
	w, _ = OpenFile(path) // appends, never truncates
	w.Write(context.Background(), recs[:1])
	w.Close()
	f, _ := os.Open(path)
	defer f.Close()
	var got []Record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		got = append(got, r)
	}
	if len(got) != 3 || string(got[0].Raw) != "\x00\xff" || string(got[1].Event) != `{"a":1}` || got[2].Reason != "bad json" {
		t.Fatalf("records = %+v", got)
	}
}

func TestKafkaWritesAndConfigErrors(t *testing.T) {
	if err := (KafkaConfig{}).Validate(); err == nil {
		t.Fatal("empty config validated")
	}
	c, err := kfake.NewCluster(kfake.Ports(0), kfake.SeedTopics(1, "dead"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w, err := NewKafka(KafkaConfig{Brokers: c.ListenAddrs(), Topic: "dead"})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(context.Background(), []Record{{Stage: "decode", Reason: "truncated protobuf", DB: "shop", Table: "users"}}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: c.ListenAddrs(), Topic: "dead", Partition: 0})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := r.ReadMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var rec Record
	if err := json.Unmarshal(m.Value, &rec); err != nil || rec.Reason != "truncated protobuf" || string(m.Key) != "shop.users" {
		t.Fatalf("message %s / %s: %v", m.Key, m.Value, err)
	}
}
