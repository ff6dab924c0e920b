package all

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/rowsync/rowsync/source/decode"
)

// dirs maps each format to its package folder, where testdata/hostile
// holds its part of the hostile corpus: NAME.json or NAME.bin is one
// message, NAME.key its Kafka key (optional), NAME.reason the text its
// rejection must contain.
var dirs = map[string]string{"canal-json": "canaljson", "canal-protobuf": "canalpb", "maxwell": "maxwell",
	"debezium": "debezium", "jsonl": "jsonl"}

func keyID(db, table string) []string { return []string{"id"} }

func newBounded(t testing.TB, format string, lim decode.Limits) decode.Decoder {
	d, err := New(format, decode.Options{KeyColumns: keyID, Limits: lim})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestHostileCorpus decodes every hostile message through the boundary
// run and decode use (New): each is rejected with its reason, and no
// prefix of it (a truncated message) panics or yields an event that
// renders as invalid JSON.
func TestHostileCorpus(t *testing.T) {
	for _, format := range Names() {
		dir := filepath.Join("..", dirs[format], "testdata", "hostile")
		reasons, _ := filepath.Glob(filepath.Join(dir, "*.reason"))
		if len(reasons) < 5 {
			t.Fatalf("%s: %d hostile cases in %s", format, len(reasons), dir)
		}
		d := newBounded(t, format, decode.Limits{})
		for _, rf := range reasons {
			base := strings.TrimSuffix(rf, ".reason")
			t.Run(format+"/"+filepath.Base(base), func(t *testing.T) {
				want, _ := os.ReadFile(rf)
				msg := decode.Message{Topic: "t", Offset: 1}
				var err error
				if msg.Value, err = os.ReadFile(base + ".json"); err != nil {
					if msg.Value, err = os.ReadFile(base + ".bin"); err != nil {
						t.Fatal(err)
					}
				}
				msg.Key, _ = os.ReadFile(base + ".key")
				evs, err := d.Decode(msg)
				reason := strings.TrimSpace(string(want))
				if reason == "" {
					t.Fatal("empty .reason file")
				}
				if err == nil || !strings.Contains(err.Error(), reason) {
					t.Fatalf("got %d events, error %v; want an error containing %q", len(evs), err, reason)
				}
				step := max(1, len(msg.Value)/200) // truncated at up to 200 points
				for i := 0; i < len(msg.Value); i += step {
					checkAccepted(t, d, decode.Message{Key: msg.Key, Value: msg.Value[:i]})
				}
			})
		}
	}
}

// checkAccepted decodes msg; if it is accepted, every event must render
// as valid JSON (it could reach the dead letter).
func checkAccepted(t *testing.T, d decode.Decoder, msg decode.Message) {
	t.Helper()
	evs, err := d.Decode(msg)
	if err != nil {
		return
	}
	for _, ev := range evs {
		line, err := decode.EventJSON(ev)
		if err != nil || !json.Valid(line) {
			t.Fatalf("accepted %q: event renders as %q (%v)", msg.Value, line, err)
		}
	}
}

// generators build, for each format, a message of n rows of n columns
// each (one of them "id").
var generators = map[string]func(rows, cols int) []byte{
	"canal-json": func(rows, cols int) []byte {
		var b bytes.Buffer
		b.WriteString(`{"type":"INSERT","database":"shop","table":"t","pkNames":["id"],"data":[`)
		for r := range rows {
			if r > 0 {
				b.WriteByte(',')
			}
			writeObject(&b, r, cols, true)
		}
		b.WriteString("]}")
		return b.Bytes()
	},
	"maxwell": func(rows, cols int) []byte {
		var b bytes.Buffer
		for r := range rows {
			b.WriteString(`{"database":"shop","table":"t","type":"insert","ts":1596684893,"primary_key_columns":["id"],"data":`)
			writeObject(&b, r, cols, false)
			b.WriteString("}\n")
		}
		return b.Bytes()
	},
	"debezium": func(rows, cols int) []byte {
		var b bytes.Buffer
		for r := range rows {
			b.WriteString(`{"before":null,"after":`)
			writeObject(&b, r, cols, false)
			b.WriteString(`,"source":{"db":"shop","table":"t","file":"mysql-bin.000003","pos":805,"ts_ms":1714558830000},"op":"c","ts_ms":1714558830456}`)
		}
		return b.Bytes()
	},
	"jsonl": func(rows, cols int) []byte {
		var b bytes.Buffer
		for r := range rows {
			b.WriteString(`{"binlog":"mysql-bin.000052:754","db":"shop","table":"t","eventType":"INSERT","before":"","after":`)
			writeObject(&b, r, cols, true)
			b.WriteString(`,"time":"2016-08-23 15:44:10"}` + "\n")
		}
		return b.Bytes()
	},
	"canal-protobuf": func(rows, cols int) []byte {
		tag := func(b []byte, n protowire.Number, v []byte) []byte {
			return protowire.AppendBytes(protowire.AppendTag(b, n, protowire.BytesType), v)
		}
		varint := func(b []byte, n protowire.Number, v uint64) []byte {
			return protowire.AppendVarint(protowire.AppendTag(b, n, protowire.VarintType), v)
		}
		var rc []byte
		rc = varint(rc, 2, 1) // INSERT
		for r := range rows {
			var rd []byte
			for c := range cols {
				var cb []byte
				name, val := fmt.Sprintf("c%d", c), fmt.Sprint(c)
				if c == 0 {
					name, val = "id", fmt.Sprint(r)
				}
				cb = varint(cb, 2, 12)
				cb = tag(cb, 3, []byte(name))
				cb = varint(cb, 4, map[bool]uint64{true: 1}[c == 0])
				cb = tag(cb, 8, []byte(val))
				cb = tag(cb, 10, []byte("varchar(8)"))
				rd = tag(rd, 2, cb)
			}
			rc = tag(rc, 12, rd)
		}
		var hdr []byte
		hdr = tag(hdr, 2, []byte("mysql-bin.000003"))
		hdr = varint(hdr, 3, 4711)
		hdr = tag(hdr, 8, []byte("shop"))
		hdr = tag(hdr, 9, []byte("t"))
		hdr = varint(hdr, 11, 1)
		var e []byte
		e = tag(e, 1, hdr)
		e = varint(e, 2, 2)
		e = tag(e, 3, rc)
		var msgs []byte
		msgs = varint(msgs, 1, 1)
		msgs = tag(msgs, 2, e)
		var p []byte
		p = varint(p, 3, 7)
		return tag(p, 5, msgs)
	},
}

func writeObject(b *bytes.Buffer, r, cols int, quote bool) {
	q := map[bool]string{true: `"`}[quote]
	fmt.Fprintf(b, `{"id":%s%d%s`, q, r, q)
	for c := 1; c < cols; c++ {
		fmt.Fprintf(b, `,"c%d":%s%d%s`, c, q, c, q)
	}
	b.WriteByte('}')
}

// TestHostileGenerated covers what is too big to commit: a 50 MB message,
// a row of 100,000 columns and a message of 900,000 tiny rows (canal-json
// only; the others carry one row per object and are held by the size
// limit and the row cap alike).
func TestHostileGenerated(t *testing.T) {
	for _, format := range Names() {
		gen := generators[format]
		t.Run(format, func(t *testing.T) {
			d := newBounded(t, format, decode.Limits{})
			if evs, err := d.Decode(decode.Message{Value: gen(1, 3), Key: []byte(`{"id":0}`)}); err != nil || len(evs) == 0 {
				t.Fatalf("generator's good message: %d events, %v", len(evs), err)
			}
			big := bytes.Repeat([]byte{'x'}, 50<<20)
			_, err := d.Decode(decode.Message{Value: big})
			if err == nil || !strings.Contains(err.Error(), "message of 52428800 bytes exceeds max_message_bytes 16777216") {
				t.Fatalf("50 MB message: %v", err)
			}
			_, err = d.Decode(decode.Message{Value: gen(1, 100000), Key: []byte(`{"id":0}`)})
			if err == nil || !strings.Contains(err.Error(), "more than 4096 columns") {
				t.Fatalf("100,000 columns: %v", err)
			}
			if format == "debezium" {
				return // one row per message
			}
			_, err = d.Decode(decode.Message{Value: gen(10001, 1)})
			if err == nil || !strings.Contains(err.Error(), "more than 10000 rows in one message (max_rows)") {
				t.Fatalf("10,001 rows: %v", err)
			}
		})
	}
}
