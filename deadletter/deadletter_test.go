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

	"github.com/rowsync/rowsync/cdc"
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

func TestFileIsPrivateAndRotates(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "dl.jsonl")
	// a file an older version left world-readable is tightened
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := OpenFileConfig(Config{File: path, MaxBytes: 1000, MaxFiles: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	rec := Record{Stage: "decode", Reason: strings.Repeat("r", 400)}
	for range 10 {
		if err := w.Write(context.Background(), []Record{rec}); err != nil {
			t.Fatal(err)
		}
	}
	files, _ := filepath.Glob(path + "*")
	if len(files) != 3 {
		t.Fatalf("files %v, want dl.jsonl, .1 and .2", files)
	}
	var total int64
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", f, st.Mode().Perm())
		}
		total += st.Size()
	}
	if total > 3*1500 {
		t.Fatalf("%d bytes kept, want at most about (max_files+1) × max_bytes", total)
	}
}

func TestEncodeMaxTruncatesWithMarker(t *testing.T) {
	raw := bytes.Repeat([]byte{0xab}, 3<<20)
	rec := Record{Stage: "decode", Reason: strings.Repeat("x", 5000), Pos: "t/0@1", Raw: raw,
		Event: json.RawMessage(`{"a":"` + strings.Repeat("y", 2<<20) + `"}`)}
	line := EncodeMax(&rec, 100000)
	if len(line) > 100000 {
		t.Fatalf("%d bytes", len(line))
	}
	var back Record
	if err := json.Unmarshal(line, &back); err != nil {
		t.Fatal(err)
	}
	if !back.Truncated || back.RawBytes != len(raw) || back.EventBytes != len(rec.Event) || back.Event != nil ||
		len(back.Raw) < 70000 || !bytes.Equal(back.Raw, raw[:len(back.Raw)]) || back.Pos != "t/0@1" || len(back.Reason) > 1100 {
		t.Fatalf("truncated record: truncated=%v raw=%d/%d event=%d reason=%d", back.Truncated, len(back.Raw), back.RawBytes, back.EventBytes, len(back.Reason))
	}
	small := Record{Stage: "x", Raw: []byte("ok")}
	if got := EncodeMax(&small, 100000); string(got) != string(Encode(&small)) {
		t.Fatalf("small record changed: %s", got)
	}
}

// TestKafkaRecordOverOneMiB: a dead letter bigger than the client's 1 MiB
// default once failed on every retry; it is cut to max_record_bytes.
func TestKafkaRecordOverOneMiB(t *testing.T) {
	c, err := kfake.NewCluster(kfake.Ports(0), kfake.SeedTopics(1, "dead-big"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w, err := NewKafka(KafkaConfig{Brokers: c.ListenAddrs(), Topic: "dead-big"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	big := Record{Stage: "decode", Reason: "message of 3145728 bytes exceeds max_message_bytes", DB: "shop", Table: "users",
		Raw: bytes.Repeat([]byte("z"), 3<<20)}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := w.Write(ctx, []Record{big, {Stage: "decode", Reason: "small"}}); err != nil {
		t.Fatal(err)
	}
	r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: c.ListenAddrs(), Topic: "dead-big", Partition: 0, MaxBytes: 4 << 20})
	defer r.Close()
	for i := range 2 {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var rec Record
		if err := json.Unmarshal(m.Value, &rec); err != nil {
			t.Fatal(err)
		}
		if i == 0 && (!rec.Truncated || rec.RawBytes != 3<<20 || len(m.Value) > DefaultMaxRecordBytes) {
			t.Fatalf("big record: truncated=%v raw_bytes=%d, %d bytes", rec.Truncated, rec.RawBytes, len(m.Value))
		}
	}
}

func TestRendererLeavesOutExcludedColumns(t *testing.T) {
	ev := cdc.Event{DB: "shop", Table: "users", Op: cdc.Update, PK: []string{"id"},
		Columns: []cdc.Column{{Name: "id"}, {Name: "email"}, {Name: "password_hash"}},
		Before:  cdc.RowOf("id", int64(1), "email", "a@x", "password_hash", "secret1"),
		After:   cdc.RowOf("id", int64(1), "email", "b@x", "password_hash", "secret2")}
	render := func(ev cdc.Event) ([]byte, error) {
		return json.Marshal(map[string]any{"b": ev.Before, "a": ev.After, "n": len(ev.Columns)})
	}
	hidden := func(db, table string) func(string) bool {
		if table != "users" {
			return nil
		}
		return func(c string) bool { return c == "password_hash" || c == "id" } // the key stays anyway
	}
	got, _ := Renderer(render, hidden, "")(ev)
	if strings.Contains(string(got), "secret") || strings.Contains(string(got), "password_hash") || !strings.Contains(string(got), `"id":1`) || !strings.Contains(string(got), `"n":2`) {
		t.Fatalf("omit: %s", got)
	}
	got, _ = Renderer(render, hidden, "redact")(ev)
	if strings.Contains(string(got), "secret") || !strings.Contains(string(got), `"password_hash":"[redacted]"`) {
		t.Fatalf("redact: %s", got)
	}
	if ev.After.Get("password_hash") != "secret2" {
		t.Fatal("the event itself was changed")
	}
	other := ev
	other.Table = "orders"
	if got, _ = Renderer(render, hidden, "")(other); !strings.Contains(string(got), "secret2") {
		t.Fatalf("other table: %s", got)
	}
}

func TestConfigValidate(t *testing.T) {
	err := Config{File: "x", Kafka: &KafkaConfig{}, MaxBytes: -1, ExcludedColumns: "hide"}.Validate()
	for _, want := range []string{"kafka.brokers: required", "set file or kafka", "max_bytes", `excluded_columns: unknown "hide"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not contain %q", err, want)
		}
	}
}

func TestScrubbedMasksReasons(t *testing.T) {
	m := &Memory{}
	w := Scrubbed(m, func(s string) string { return strings.ReplaceAll(s, "hunter2", "xxxxx") })
	recs := []Record{{Stage: "redis", Reason: "AUTH hunter2 failed"}}
	if err := w.Write(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	if got := m.Records()[0].Reason; got != "AUTH xxxxx failed" || recs[0].Reason != "AUTH hunter2 failed" {
		t.Fatalf("reason %q (input %q)", got, recs[0].Reason)
	}
}
