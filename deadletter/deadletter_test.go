package deadletter

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
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

// TestEncodeAlwaysValid: hostile names, invalid UTF-8 and an Event that is
// not JSON still give one valid JSON line, so a write never fails for ever.
func TestEncodeAlwaysValid(t *testing.T) {
	for name, rec := range map[string]Record{
		"control chars": {Stage: "decode", Reason: "bad\a", DB: "d\x01", Table: "t\n", Pos: "p\x00", Raw: []byte{0xff}},
		"invalid utf8":  {Stage: "redis", Reason: "x\xff", DB: "\xfe", Table: "t", Event: json.RawMessage(`{"a":"\u0007"}`)},
		"bad event":     {Stage: "redis", Reason: "WRONGTYPE", Event: json.RawMessage("{\"db\":\"t\\a\"}")},
	} {
		t.Run(name, func(t *testing.T) {
			line := Encode(&rec)
			var back Record
			if err := json.Unmarshal(line, &back); err != nil || bytes.ContainsRune(line, '\n') {
				t.Fatalf("line %q: %v", line, err)
			}
			if string(back.Raw) != string(rec.Raw) || back.Stage != rec.Stage {
				t.Fatalf("round trip %+v", back)
			}
			if name == "bad event" && (back.Event != nil || !strings.Contains(back.Reason, "not valid JSON")) {
				t.Fatalf("bad event kept: %s", line)
			}
		})
	}
	path := filepath.Join(t.TempDir(), "dl.jsonl")
	w, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Write(context.Background(), []Record{{Stage: "x", Event: json.RawMessage(`{"a":\a}`)}}); err != nil {
		t.Fatalf("write with a bad event: %v", err)
	}
}
