package invalidator

import (
	"bytes"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/rowsync/rowsync/cdc"
)

// block is how the lead's config embeds the invalidator blocks.
type block struct {
	Invalidator Config      `yaml:"invalidator"`
	Table       TableConfig `yaml:"table"`
}

func decode(t *testing.T, src string) (block, error) {
	t.Helper()
	var b block
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	err := dec.Decode(&b)
	return b, err
}

func TestConfigDecode(t *testing.T) {
	b, err := decode(t, `
invalidator:
  name: shop
  command: DEL
  batch_size: 100
  poll: 5ms
  broadcast: {channel: "rowsync:invalidations"}
table:
  delay: 500ms
  keys:
    - "user:{id}"
    - key: "user:email:{email|lower}"
      when_changed: [email]
`)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Invalidator.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := b.Table.Validate(); err != nil {
		t.Fatal(err)
	}
	c := b.Invalidator.withDefaults()
	if c.Name != "shop" || c.Command != "del" || c.BatchSize != 100 || c.Poll != 5*time.Millisecond || c.Broadcast.Channel != "rowsync:invalidations" {
		t.Errorf("config = %+v", c)
	}
	tc := b.Table
	if tc.Delay != 500*time.Millisecond || len(tc.Keys) != 2 || tc.Keys[0].Key != "user:{id}" ||
		tc.Keys[1].Key != "user:email:{email|lower}" || len(tc.Keys[1].WhenChanged) != 1 {
		t.Errorf("table = %+v", tc)
	}

	// Round trip: a plain key marshals back to a string.
	var buf bytes.Buffer
	if err := yaml.NewEncoder(&buf).Encode(tc); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "- user:{id}\n") || !strings.Contains(buf.String(), "when_changed:") {
		t.Errorf("marshal:\n%s", buf.String())
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{}.withDefaults()
	if c.Name != "default" || c.Command != "unlink" || c.BatchSize != 500 || c.Poll != 20*time.Millisecond {
		t.Errorf("defaults = %+v", c)
	}
}

func TestConfigDecodeErrors(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"unknown key field", "table:\n  keys:\n    - {key: a, when_chnaged: [x]}\n", `unknown field "when_chnaged"`},
		{"key as list", "table:\n  keys:\n    - [a]\n", "template string or {key"},
		{"bad duration", "table:\n  delay: soon\n  keys: [a]\n", "soon"},
		{"unknown table field", "table:\n  keyz: [a]\n", "keyz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decode(t, tt.src)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want containing %q", err, tt.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		tc   TableConfig
		want []string // each must appear; nil = valid
	}{
		{name: "valid", tc: TableConfig{Keys: []KeySpec{{Key: "user:{id}"}}}},
		{
			name: "table problems all reported",
			tc: TableConfig{
				Delay: -time.Second,
				Keys: []KeySpec{
					{Key: "user:{email|lowr}"},
					{Key: "user:{id"},
					{Key: ""},
					{Key: "org:{org}", WhenChanged: []string{}, whenChangedSet: true},
					{Key: "org:{org}", WhenChanged: []string{" "}},
				},
			},
			want: []string{
				`keys[0]: template "user:{email|lowr}": placeholder {email|lowr}: unknown filter "lowr"`,
				`keys[1]: template "user:{id": unclosed {`,
				`keys[2]: empty key template`,
				`keys[3].when_changed: empty list`,
				`keys[4].when_changed[0]: empty column name`,
				`delay: negative duration -1s`,
			},
		},
		{name: "no keys", tc: TableConfig{}, want: []string{"keys: at least one key template required"}},
		{
			name: "top-level problems",
			cfg:  Config{Name: "a{b}", Command: "expire", BatchSize: -1, Poll: -1},
			tc:   TableConfig{Keys: []KeySpec{{Key: "k"}}},
			want: []string{"name: ", "command: \"expire\"", "batch_size: -1", "poll: negative"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := errors.Join(tt.cfg.Validate(), tt.tc.Validate())
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestNewReportsTablePaths(t *testing.T) {
	rules := []cdc.TableRule[TableConfig]{
		{Match: regexp.MustCompile("^a$"), Config: TableConfig{Keys: []KeySpec{{Key: "ok:{id}"}}}},
		{Match: regexp.MustCompile("^b$"), Config: TableConfig{Keys: []KeySpec{{Key: "x:{id|nope}"}}, Delay: -1}},
	}
	_, err := New(newClientNoDial(t), Config{Command: "zap"}, rules, nil)
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{`command: "zap"`, `tables[1].keys[0]: template`, `unknown filter "nope"`, `tables[1].delay: negative`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
	if _, err := New(nil, Config{}, nil, nil); err == nil {
		t.Error("nil client accepted")
	}
}
