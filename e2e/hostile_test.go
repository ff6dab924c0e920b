package e2e

// Issue 11: hostile input never crashes, stalls or misleads rowsync.
//
// The decoders' hostile corpus (source/decode/*/testdata/hostile: huge
// DECIMAL scales, control characters and invalid UTF-8 in names, object
// primary keys, deep nesting, huge numbers, truncation) is interleaved with
// a generated change stream on Kafka and RabbitMQ, and the real binary runs
// it into Redis: the process never exits, every good row ends exact, and
// every hostile message is exactly one valid dead-letter line with its
// reason.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rowsync/rowsync/internal/changegen"
)

// hostileCorpus reads a decoder's hostile corpus as poison messages.
func hostileCorpus(t *testing.T, pkg string) []poison {
	t.Helper()
	reasons, _ := filepath.Glob(filepath.Join("..", "source", "decode", pkg, "testdata", "hostile", "*.reason"))
	var out []poison
	for _, rf := range reasons {
		base := strings.TrimSuffix(rf, ".reason")
		raw, err := os.ReadFile(base + ".json")
		if err != nil {
			if raw, err = os.ReadFile(base + ".bin"); err != nil {
				t.Fatal(err)
			}
		}
		if len(raw) == 0 {
			continue // an empty record is a tombstone to some producers; the decoder test covers it
		}
		reason, _ := os.ReadFile(rf)
		out = append(out, poison{raw, strings.TrimSpace(string(reason))})
	}
	if len(out) < 5 {
		t.Fatalf("%s: %d hostile messages", pkg, len(out))
	}
	return out
}

func TestHostile(t *testing.T) {
	for _, tc := range []struct {
		name, transport, encoding, pkg string
	}{
		{"kafka-canal-json", "kafka", changegen.EncCanalJSON, "canaljson"},
		{"kafka-canal-protobuf", "kafka", changegen.EncCanalProtobuf, "canalpb"},
		{"rabbitmq-canal-json", "rabbitmq", changegen.EncCanalJSON, "canaljson"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSetup(t, "h-"+tc.name)
			set, parts := poisonStream(t, 1100, tc.transport, tc.encoding)
			ps := hostileCorpus(t, tc.pkg)
			if tc.encoding == changegen.EncCanalJSON {
				// more rows than max_rows: rejected while parsing
				rows := `{"type":"INSERT","database":"shop","table":"users","pkNames":["id"],"data":[` +
					strings.Repeat(`{"id":"1"},`, 20000) + `{"id":"1"}]}`
				ps = append(ps, poison{[]byte(rows), "more than 10000 rows in one message (max_rows)"})
			}
			// one valid dead-letter line per hostile message, with its reason
			runWithPoison(t, s, tc.transport, tc.encoding, set, parts, ps)
			if st, err := os.Stat(s.dl); err != nil || st.Mode().Perm() != 0o600 {
				t.Errorf("dead letter file: %v, %v; want mode 0600", st.Mode().Perm(), err)
			}
		})
	}
}
