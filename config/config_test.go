package config

import (
	"errors"
	"strings"
	"testing"
)

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

// Test components: config knows them only through the registry.
type conn struct {
	Addr string `yaml:"addr"`
}

func (c conn) Secrets() []string { return []string{"secret-of-" + c.Addr} }

func (c conn) Validate() error {
	if c.Addr == "bad" {
		return errors.New("addr: bad address")
	}
	return nil
}

type tap struct {
	Host  string   `yaml:"host"`
	Flags []string `yaml:"flags"`
}

func (t *tap) Validate() error {
	if t.Host == "" {
		return errors.New("host: required")
	}
	t.Flags = append(t.Flags, "validated") // a Validate may normalise
	return nil
}

type hashRule struct {
	Key     string   `yaml:"key"`
	Include []string `yaml:"include"`
	Exclude []string `yaml:"exclude"`
}

func (h hashRule) SelectedColumns() (include, exclude []string) { return h.Include, h.Exclude }

func (h hashRule) Validate() error {
	if strings.Count(h.Key, "{") != strings.Count(h.Key, "}") {
		return errors.New("key: unbalanced braces")
	}
	return nil
}

type hashes struct {
	Parallel int `yaml:"parallel"`
}

func (h hashes) Validate() error {
	if h.Parallel < 0 {
		return errors.New("parallel: must not be negative")
	}
	return nil
}

var testRegistry = Registry{
	Sources: map[string]Codec{"tap": Of[tap]()},
	Sinks: map[string]Sink{
		"hash":  {Config: Of[hashes](), Rule: Of[hashRule](), Needs: []string{"store"}},
		"purge": {Rule: Of[hashRule](), Needs: []string{"cache", "store"}},
	},
	Blocks: map[string]Codec{"store": Of[conn](), "cache": Of[conn]()},
	Check: func(c *Config) error {
		if c.Has("cache") && !c.Has("store") {
			return Problem("cache", "needs store")
		}
		return nil
	},
}

const base = `name: demo
source:
  tap: {host: h}
store: {addr: "s:1"}
tables:
  - match: shop.users
    hash: {key: "{id}"}
`

func TestParseDecodesThroughTheRegistry(t *testing.T) {
	c, err := Parse([]byte(base+"hash: {parallel: 3}\n"), env(nil), testRegistry)
	if err != nil {
		t.Fatal(err)
	}
	src, ok := Block[tap](c, "source.tap")
	if c.Source != "tap" || !ok || src.Host != "h" || len(src.Flags) != 1 {
		t.Fatalf("source %q %+v", c.Source, src)
	}
	if s, ok := Block[conn](c, "store"); !ok || s.Addr != "s:1" || c.Has("cache") {
		t.Fatalf("store %+v %v, cache %v", s, ok, c.Has("cache"))
	}
	if h, ok := Block[hashes](c, "hash"); !ok || h.Parallel != 3 {
		t.Fatalf("hash block %+v", h)
	}
	if r := c.Tables[0].Sinks["hash"].(hashRule); r.Key != "{id}" {
		t.Fatalf("table rule %+v", r)
	}
	if c.Admin.Address() != DefaultAdminAddr || (Admin{Addr: "off"}).Address() != "" {
		t.Fatal("admin address default")
	}
}

func TestErrorsNameTheirKey(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		vars map[string]string
		want []string
	}{
		{"unknown top-level key", base + "stor: {}\n", nil, []string{"line 8: field stor not found"}},
		{"unknown key in a block", strings.Replace(base, "{host: h}", "{host: h, hots: x}", 1), nil, []string{"source.tap: line 3: field hots not found"}},
		{"component error", strings.Replace(base, "s:1", "bad", 1), nil, []string{"store.addr: bad address"}},
		{"unknown source", strings.Replace(base, "tap:", "tape:", 1), nil, []string{"field tape not found in source (want one of tap)"}},
		{"no source", strings.Replace(base, "  tap: {host: h}\n", "", 1), nil, []string{"source: required: one of tap"}},
		{"table rule error", strings.Replace(base, "{id}", "{id", 1), nil, []string{"tables[0].hash.key: unbalanced braces"}},
		{"unknown table key", base + "    hsah: {}\n", nil, []string{"tables[0]: line 8: field hsah not found (want match, pk, refetch or a sink: hash, purge)"}},
		{"table without sink", base + "  - match: shop.orders\n", nil, []string{"tables[1]: no sink: set hash or purge"}},
		{"sink needs a block", strings.Replace(base, "store: {addr: \"s:1\"}\n", "", 1), nil, []string{"tables[0].hash: needs the top-level store: block"}},
		{"sink needs one of", strings.Replace(strings.Replace(base, "store: {addr: \"s:1\"}\n", "", 1), "hash:", "purge:", 1), nil, []string{"tables[0].purge: needs cache: or store:"}},
		{"registry check", base + "cache: {}\n", nil, nil},
		{"registry check fails", strings.Replace(strings.Replace(base, "store: {addr: \"s:1\"}\n", "cache: {}\n", 1), "hash:", "purge:", 1), nil, []string{"cache: needs store"}},
		{"missing name", strings.Replace(base, "name: demo", "", 1), nil, []string{"name: required"}},
		{"bad match", strings.Replace(base, "match: shop.users", "match: \"shop.[\"", 1), nil, []string{"tables[0].match: bad regex"}},
		{"unset variable", strings.Replace(base, "s:1", "${STORE}", 1), nil, []string{"store.addr: environment variable STORE is not set"}},
		{"variable default", strings.Replace(base, "s:1", "${STORE:-s:2}", 1), nil, nil},
		{"bad log level", base + "log: {level: loud}\n", nil, []string{"log.level: unknown \"loud\""}},
		{"memory limit", base + "pipeline: {memory_limit: 104857600}\n", nil, nil},
		{"bad memory limit", base + "pipeline: {memory_limit: -2}\n", nil, []string{"pipeline.memory_limit: -2 is negative"}},
		{"no memory limit", base + "pipeline: {memory_limit: -1, gc_percent: 400}\n", nil, nil},
		{"gc off under a limit", base + "pipeline: {memory_limit: 104857600, gc_percent: -1}\n", nil, nil},
		{"tiny memory limit", base + "pipeline: {memory_limit: 1048576}\n", nil, []string{"pipeline.memory_limit: 1048576 is below 16777216 (16 MiB)"}},
		{"bad gc percent", base + "pipeline: {gc_percent: -5}\n", nil, []string{"pipeline.gc_percent: -5 is negative (-1: off)"}},
		{"gc off without a limit", base + "pipeline: {memory_limit: -1, gc_percent: -1}\n", nil, []string{"pipeline.gc_percent: -1 (off) with memory_limit -1 (none) would never collect"}},
		{"negative window", base + "pipeline: {max_in_flight_bytes: -1, max_apply: -2}\n", nil, []string{"pipeline.max_in_flight_bytes: -1 is negative", "pipeline.max_apply: -2 is negative"}},
		{"negative duration", base + "pipeline: {stuck_after: -1s}\n", nil, []string{"pipeline.stuck_after: -1s is negative"}},
		{"several at once", strings.Replace(strings.Replace(base, "name: demo", "", 1), "{host: h}", "{}", 1), nil,
			[]string{"name: required", "source.tap.host: required"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), env(tc.vars), testRegistry)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestTopLevelWorkersIsPipelineWorkers(t *testing.T) {
	c, err := Parse([]byte(base+"workers: 8\n"), env(nil), testRegistry)
	if err != nil {
		t.Fatal(err)
	}
	if c.Pipeline.Workers != 8 {
		t.Fatalf("pipeline.workers = %d, want 8", c.Pipeline.Workers)
	}
}

// TestEnvValuesAreVerbatim: an environment value is the value, never YAML:
// "null" and "~" once became an empty password.
func TestEnvValuesAreVerbatim(t *testing.T) {
	for _, v := range []string{"null", "~", "NULL", "#not-a-comment", "a: b", "'q'", "0123"} {
		raw := []byte(`name: t
source:
  tap:
    host: ${PW}
store:
  addr: ${PW}
tables:
  - {match: shop.users, hash: {}}
`)
		c, err := Parse(raw, env(map[string]string{"PW": v}), testRegistry)
		if err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		src, _ := Block[tap](c, "source.tap")
		store, _ := Block[conn](c, "store")
		if src.Host != v || store.Addr != v {
			t.Errorf("env %q: source.tap.host %q, store.addr %q", v, src.Host, store.Addr)
		}
	}
}

func TestSecretsComeFromTheBlocks(t *testing.T) {
	c, err := Parse([]byte(base+"cache: {addr: \"c:1\"}\n"), env(nil), testRegistry)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.Secrets(), ","); got != "secret-of-c:1,secret-of-s:1" {
		t.Fatalf("Secrets() = %q", got)
	}
}

func TestPrefix(t *testing.T) {
	err := Prefix("tables[1] (shop.orders): redis_hash", errors.Join(
		errors.New(`key: unknown column "order_nr"`),
		errors.New(`key "{db}_{table}_{pk}" needs {pk} but the table has no primary key`),
		errors.New("the table has no primary key")))
	want := `tables[1] (shop.orders): redis_hash.key: unknown column "order_nr"` + "\n" +
		`tables[1] (shop.orders): redis_hash.key "{db}_{table}_{pk}" needs {pk} but the table has no primary key` + "\n" +
		`tables[1] (shop.orders): redis_hash: the table has no primary key`
	if err == nil || err.Error() != want {
		t.Fatalf("Prefix = %v\nwant %s", err, want)
	}
	if Prefix("x", nil) != nil {
		t.Fatal("Prefix of nil")
	}
}
