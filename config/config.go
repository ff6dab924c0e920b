// Package config loads rowsync's YAML configuration into typed, validated
// values. ${VAR} and ${VAR:-default} are expanded in every scalar; unknown
// keys are errors; validation reports every problem at once, each naming
// its key path ("tables[2].redis_hash.key: unknown filter"), so `rowsync
// run` can exit before connecting to anything.
//
// This package owns the file's shape, its own settings (name, pipeline,
// admin, log), the tables[] entries and the one table Router. It imports
// no component: the blocks of sources, sinks and the other components
// (source.binlog, redis_hash, lease, ...) are decoded and validated by the
// codecs of a Registry that cmd/rowsync passes in, one line per component.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/rowsync/rowsync/cdc"
)

// Config is the whole file.
type Config struct {
	// Name names the pipeline: checkpoint key, metrics label. Required.
	Name string `yaml:"name"`
	// Source is the kind of the one source block: the key under source:
	// ("binlog", "kafka", "rabbitmq"). Its settings are Block(c,
	// "source."+Source).
	Source string `yaml:"-"`
	// Pipeline tunes sharding, batching and retries.
	Pipeline Pipeline `yaml:"pipeline"`
	// Workers is shorthand for pipeline.workers.
	Workers int `yaml:"workers"`
	// Admin serves /healthz, /readyz and /metrics.
	Admin Admin `yaml:"admin"`
	// Log configures logging.
	Log Log `yaml:"log"`
	// Tables maps tables to sinks; the first matching entry decides
	// everything about a table (see Router). Required.
	Tables []Table `yaml:"-"`

	// blocks holds the decoded component blocks by key path
	// ("source.binlog", "lease", "redis_hash").
	blocks map[string]any
}

// Table maps the tables matching Match ("db.table", a regex, anchored)
// to sinks.
type Table struct {
	Match string `yaml:"match"`
	// PK names the primary-key columns for sources that do not carry them
	// (Maxwell without primary_key_columns, JSON lines, keyless tables).
	PK []string `yaml:"pk"`
	// Refetch re-reads each changed row from mysql: by primary key and
	// writes what MySQL has now. Default: false
	Refetch bool `yaml:"refetch"`
	// Sinks holds the entry's sink blocks by table-rule key ("redis_hash",
	// "mongo", "invalidate"), each decoded by its sink's Rule codec.
	Sinks map[string]any `yaml:"-"`
}

// Pipeline tunes the pipeline; see package pipeline for each default.
type Pipeline struct {
	// Workers applying in parallel, sharded by primary key. Default: GOMAXPROCS
	Workers int `yaml:"workers"`
	// MaxInFlight batches between source and ack. Default: 8
	MaxInFlight int `yaml:"max_in_flight"`
	// MaxInFlightBytes bounds the estimated memory of those batches (one
	// batch always flows). Default: 8388608 (8 MiB)
	MaxInFlightBytes int64 `yaml:"max_in_flight_bytes"`
	// MaxApply events per sink call. Default: 8192
	MaxApply int `yaml:"max_apply"`
	// MemoryLimit is the Go runtime's soft memory limit for the process
	// (runtime/debug.SetMemoryLimit), in bytes: the garbage collector runs
	// sooner as the heap nears it, so it bounds the peak while GCPercent
	// lets the collector run seldom below it. It is no hard cap: past it
	// the collector takes up to about half the CPU, so it must stay well
	// above the live data (max_in_flight_bytes and the source's
	// read_ahead bound that). -1: no limit. Default: GOMEMLIMIT when set,
	// else 96 MiB, or 64 MiB + 4 × max_in_flight_bytes when that is more
	MemoryLimit int64 `yaml:"memory_limit"`
	// GCPercent is the collector's target (runtime/debug.SetGCPercent,
	// GOGC): the heap may grow this many percent over the live data
	// before a collection, up to MemoryLimit. Higher means fewer
	// collections, less CPU per row and more memory. -1: off (collect
	// only near MemoryLimit; needs one). Default: GOGC when set, else 200
	GCPercent int `yaml:"gc_percent"`
	// RetryMin/RetryMax bound the backoff of transient errors. Default: 50ms/10s
	RetryMin time.Duration `yaml:"retry_min"`
	RetryMax time.Duration `yaml:"retry_max"`
	// StuckAfter: no ack for this long while work waits fails /readyz. Default: 60s
	StuckAfter time.Duration `yaml:"stuck_after"`
	// ShutdownGrace bounds the drain on SIGTERM. Default: 30s
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
}

// MinMemoryLimit is the smallest pipeline.memory_limit accepted: below
// it the runtime's own memory (stacks, buffers, the binary's data) leaves
// the heap no room.
const MinMemoryLimit = 16 << 20

// DefaultAdminAddr is where the admin endpoint listens by default.
const DefaultAdminAddr = "127.0.0.1:9187"

// Admin is the HTTP endpoint for health and metrics.
type Admin struct {
	// Addr to listen on; "off" disables it. Default: 127.0.0.1:9187
	Addr string `yaml:"addr"`
	// Pprof serves /debug/pprof/ (profiles, the command line) on Addr as
	// well: anyone who reaches the port can read them. Default: false
	Pprof bool `yaml:"pprof"`
}

// Address returns the address to listen on ("" when off).
func (a Admin) Address() string {
	switch a.Addr {
	case "off":
		return ""
	case "":
		return DefaultAdminAddr
	}
	return a.Addr
}

// Log configures slog.
type Log struct {
	// Level: debug, info, warn, error. Default: info
	Level string `yaml:"level"`
	// Format: text or json. Default: text
	Format string `yaml:"format"`
}

// Codec decodes one component block strictly (an unknown key is an error)
// and validates it, returning every problem at once, each message starting
// with its key relative to the block ("addr: required").
type Codec func(node *yaml.Node) (any, error)

// Of returns the Codec of the config type T, whose Validate (on T or *T)
// reports every problem. The decoded value is a T.
func Of[T any, P interface {
	*T
	Validate() error
}]() Codec {
	return func(node *yaml.Node) (any, error) {
		var v T
		if err := Decode(node, &v); err != nil {
			return nil, err
		}
		if err := P(&v).Validate(); err != nil {
			return nil, err
		}
		return v, nil
	}
}

// Registry is what config knows of the components; cmd/rowsync builds it
// from its explicit lists of sources and sinks.
type Registry struct {
	// Sources decode source.<kind>; exactly one kind is set in a file.
	Sources map[string]Codec
	// Sinks by table-rule key: the key of the sink's block in a tables[]
	// entry, and of its sink-wide top-level block.
	Sinks map[string]Sink
	// Blocks decode the other top-level blocks owned by components
	// (lease, checkpoint, redis, mysql, deadletter, ...).
	Blocks map[string]Codec
	// Check, when set, cross-checks the decoded blocks (a lease needs a
	// redis: block); every message starts with the key it is about.
	Check func(c *Config) error
}

// Sink is a sink's part of the Registry.
type Sink struct {
	// Config decodes the sink-wide top-level block of the same key; nil
	// when the sink has none. An absent block is not decoded (the zero
	// value of the sink's config is its default).
	Config Codec
	// Rule decodes the sink's block in a tables[] entry.
	Rule Codec
	// Needs lists top-level blocks of which at least one must be set
	// when a table uses the sink ("redis" for redis_hash).
	Needs []string
}

// Block returns the decoded component block at key ("source.binlog",
// "lease", "redis_hash") and true, or the zero T and false when the file
// does not set it.
func Block[T any](c *Config, key string) (T, bool) {
	v, ok := c.blocks[key].(T)
	return v, ok
}

// Has reports whether the file sets the component block at key (also when
// the block has errors, so what needs it does not report it missing too).
func (c *Config) Has(key string) bool {
	_, ok := c.blocks[key]
	return ok
}

// Secrets returns every secret the file's component blocks and table rules
// hold, for masking in errors, logs and dead letters: the values of those
// that have a method Secrets() []string (passwords, *_file contents, the
// passwords of URLs and DSNs).
func (c *Config) Secrets() []string {
	type holder interface{ Secrets() []string }
	var out []string
	for _, key := range sortedKeys(c.blocks) {
		if h, ok := c.blocks[key].(holder); ok {
			out = append(out, h.Secrets()...)
		}
	}
	for _, t := range c.Tables {
		for _, key := range sortedKeys(t.Sinks) {
			if h, ok := t.Sinks[key].(holder); ok {
				out = append(out, h.Secrets()...)
			}
		}
	}
	return out
}

// Load reads, expands and validates the file at path.
func Load(path string, reg Registry) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(raw, os.LookupEnv, reg)
}

// file is the YAML shape: config's own keys, and the rest for the registry.
type file struct {
	Config `yaml:",inline"`
	Source map[string]yaml.Node `yaml:"source"`
	Tables []struct {
		Table `yaml:",inline"`
		Sinks map[string]yaml.Node `yaml:",inline"`
	} `yaml:"tables"`
	Blocks map[string]yaml.Node `yaml:",inline"`
}

// Parse decodes and validates YAML with the components of reg. lookup
// resolves ${VAR}.
func Parse(raw []byte, lookup func(string) (string, bool), reg Registry) (*Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if len(doc.Content) == 0 {
		return nil, errors.New("config: empty file")
	}
	if err := expand(&doc, "", lookup); err != nil {
		return nil, err
	}
	var f file
	if err := Decode(&doc, &f); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c := &f.Config
	c.blocks = map[string]any{}
	var errs []error
	add := func(path string, err error) { errs = append(errs, withPath(path, err)...) }
	decode := func(path string, codec Codec, node yaml.Node) any {
		v, err := codec(&node)
		if err != nil {
			add(path, err)
			return nil
		}
		return v
	}

	kinds := slices.Sorted(mapKeys(reg.Sources))
	for _, kind := range sortedKeys(f.Source) {
		codec, ok := reg.Sources[kind]
		if !ok {
			n := f.Source[kind]
			add("", fmt.Errorf("line %d: field %s not found in source (want one of %s)", keyLine(&n), kind, strings.Join(kinds, ", ")))
			continue
		}
		c.Source = kind
		c.blocks["source."+kind] = decode("source."+kind, codec, f.Source[kind])
	}
	switch len(f.Source) {
	case 0:
		add("source", plain("required: one of "+strings.Join(kinds, ", ")))
	case 1:
	default:
		add("source", plain("only one of "+strings.Join(kinds, ", ")+" may be set"))
	}

	for _, key := range sortedKeys(f.Blocks) {
		codec := reg.Blocks[key]
		if s, ok := reg.Sinks[key]; ok && codec == nil {
			codec = s.Config
		}
		if codec == nil {
			n := f.Blocks[key]
			add("", fmt.Errorf("line %d: field %s not found", keyLine(&n), key))
			continue
		}
		// A block that fails to decode is still set (Has), so nothing
		// that needs it reports it missing as well.
		c.blocks[key] = decode(key, codec, f.Blocks[key])
	}

	sinkKeys := slices.Sorted(mapKeys(reg.Sinks))
	for i, t := range f.Tables {
		p := fmt.Sprintf("tables[%d]", i)
		t.Table.Sinks = map[string]any{}
		for _, key := range sortedKeys(t.Sinks) {
			s, ok := reg.Sinks[key]
			if !ok {
				n := t.Sinks[key]
				add(p, fmt.Errorf("line %d: field %s not found (want match, pk, refetch or a sink: %s)", keyLine(&n), key, strings.Join(sinkKeys, ", ")))
				continue
			}
			if v := decode(p+"."+key, s.Rule, t.Sinks[key]); v != nil {
				t.Table.Sinks[key] = v
			} else {
				t.Table.Sinks[key] = nil // decoded with errors: reported; still a sink for the checks below
			}
		}
		c.Tables = append(c.Tables, t.Table)
	}

	add("", c.validate(reg))
	if reg.Check != nil {
		add("", reg.Check(c))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// Decode decodes node into v strictly: a key v has no field for is an
// error naming its line.
func Decode(node *yaml.Node, v any) error {
	// yaml.v3 only checks unknown keys when decoding bytes, so re-encode;
	// the lines in its errors are then the re-encoded ones, so each is
	// replaced by the line of the named key in node.
	raw, err := yaml.Marshal(node)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil && err != io.EOF {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			var errs []error
			for _, msg := range te.Errors {
				errs = append(errs, errors.New(fixLine(node, msg)))
			}
			return errors.Join(errs...)
		}
		return err
	}
	return nil
}

var unknownField = regexp.MustCompile(`^line \d+: field (\S+) not found`)

// fixLine gives an unknown-field message the line of the key in node.
func fixLine(node *yaml.Node, msg string) string {
	m := unknownField.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	if line := findKey(node, m[1]); line > 0 {
		return "line " + strconv.Itoa(line) + msg[strings.Index(msg, ":"):]
	}
	return msg
}

func findKey(n *yaml.Node, key string) int {
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				return n.Content[i].Line
			}
		}
	}
	for _, c := range n.Content {
		if l := findKey(c, key); l > 0 {
			return l
		}
	}
	return 0
}

// keyLine is the line of a block's value node, which is the line of its
// key or the one after.
func keyLine(n *yaml.Node) int { return n.Line }

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

var varRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// expand replaces ${VAR} and ${VAR:-default} in scalar values; an unset
// variable without a default is an error naming the key.
func expand(n *yaml.Node, path string, lookup func(string) (string, bool)) error {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		var errs []error
		for i, c := range n.Content {
			p := path
			if n.Kind == yaml.SequenceNode {
				p = fmt.Sprintf("%s[%d]", path, i)
			}
			errs = append(errs, expand(c, p, lookup))
		}
		return errors.Join(errs...)
	case yaml.MappingNode:
		var errs []error
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := n.Content[i].Value
			if path != "" {
				p = path + "." + p
			}
			errs = append(errs, expand(n.Content[i+1], p, lookup))
		}
		return errors.Join(errs...)
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "${") {
			return nil
		}
		var missing []string
		n.Value = varRef.ReplaceAllStringFunc(n.Value, func(ref string) string {
			m := varRef.FindStringSubmatch(ref)
			if v, ok := lookup(m[1]); ok && (v != "" || m[2] == "") {
				return v
			}
			if m[2] != "" {
				return m[3]
			}
			missing = append(missing, m[1])
			return ""
		})
		// A quoted or plain scalar that held only a reference stays a
		// string; let YAML re-resolve a plain one so ports and booleans
		// decode. A value is never read as YAML null, though: a password
		// "null" or "~" from the environment must stay that text, not
		// become an empty password.
		if n.Style == 0 {
			n.Tag = ""
			switch n.Value {
			case "~", "null", "Null", "NULL":
				n.Tag = "!!str"
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("%s: environment variable %s is not set", path, strings.Join(missing, ", "))
		}
	}
	return nil
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// validate checks config's own settings and the tables[] entries; the
// components' blocks were checked by their codecs.
func (c *Config) validate(reg Registry) error {
	var errs []error
	add := func(path string, err error) { errs = append(errs, withPath(path, err)...) }

	if c.Name == "" {
		add("name", plain("required"))
	} else if !nameRE.MatchString(c.Name) {
		add("name", fmt.Errorf("%q: use letters, digits, '.', '_' and '-'", c.Name))
	}
	if c.Workers != 0 {
		switch {
		case c.Workers < 0:
			add("workers", plain("must not be negative"))
		case c.Pipeline.Workers != 0 && c.Pipeline.Workers != c.Workers:
			add("workers", plain("set workers or pipeline.workers, not both"))
		default:
			c.Pipeline.Workers = c.Workers
		}
	}
	add("pipeline", c.Pipeline.validate())
	add("log", c.Log.validate())

	if len(c.Tables) == 0 {
		add("tables", plain("required: at least one table"))
	}
	sinkKeys := slices.Sorted(mapKeys(reg.Sinks))
	for i, t := range c.Tables {
		p := fmt.Sprintf("tables[%d]", i)
		if t.Match == "" {
			add(p+".match", plain("required"))
		} else if _, err := cdc.CompileMatch(t.Match); err != nil {
			add(p+".match", err)
		}
		if len(t.Sinks) == 0 {
			add(p, plain("no sink: set "+orList(sinkKeys)))
		}
		for _, key := range sortedKeys(t.Sinks) {
			needs := reg.Sinks[key].Needs
			if len(needs) > 0 && !slices.ContainsFunc(needs, c.Has) {
				if len(needs) == 1 {
					add(p+"."+key, plain("needs the top-level "+needs[0]+": block"))
				} else {
					add(p+"."+key, plain("needs "+strings.Join(needs, ": or ")+":"))
				}
			}
		}
		for j, col := range t.PK {
			if col == "" {
				add(fmt.Sprintf("%s.pk[%d]", p, j), plain("empty column name"))
			}
		}
	}
	return errors.Join(errs...)
}

// orList joins "a, b or c".
func orList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// componentKey matches the key path a component's own Validate puts in
// front of its message ("addr: ...", "tables[0].key: ...").
var componentKey = regexp.MustCompile(`^[a-z_][a-z0-9_]*(\[\d+\])*(\.[a-z_][a-z0-9_]*(\[\d+\])*)*(: | ")`)

// withPath flattens joined errors and puts path in front of each, merging
// it with the key a component already named: "source.binlog" and
// "addr: required" give "source.binlog.addr: required".
func withPath(path string, err error) []error {
	if err == nil {
		return nil
	}
	if multi, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range multi.Unwrap() {
			out = append(out, withPath(path, e)...)
		}
		return out
	}
	msg := err.Error()
	_, own := err.(plainError)
	switch {
	case path == "":
		return []error{err}
	case !own && componentKey.MatchString(msg):
		return []error{errors.New(path + "." + msg)}
	default:
		return []error{errors.New(path + ": " + msg)}
	}
}

// plainError is a message of this package's own, which never starts
// with a key of its own.
type plainError struct{ error }

func plain(msg string) error { return plainError{errors.New(msg)} }

// Prefix puts path in front of every message of err (joined errors are
// flattened), merged with a key the message starts with: "tables[1]" and
// `key: unknown column "x"` give `tables[1].key: unknown column "x"`; a
// message without a key gets "path: ". Nil for a nil err.
func Prefix(path string, err error) error { return errors.Join(withPath(path, err)...) }

// Problem returns an error about the key at path, for a Registry's Check:
// "lease: needs the top-level redis: block".
func Problem(path, msg string) error { return withPath(path, plain(msg))[0] }

func (p Pipeline) validate() error {
	var errs []error
	for _, f := range []struct {
		key string
		v   int64
	}{{"workers", int64(p.Workers)}, {"max_in_flight", int64(p.MaxInFlight)},
		{"max_in_flight_bytes", p.MaxInFlightBytes}, {"max_apply", int64(p.MaxApply)}} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("%s: %d is negative", f.key, f.v))
		}
	}
	if p.MemoryLimit < -1 {
		errs = append(errs, fmt.Errorf("memory_limit: %d is negative (-1: no limit)", p.MemoryLimit))
	}
	if p.MemoryLimit > 0 && p.MemoryLimit < MinMemoryLimit {
		errs = append(errs, fmt.Errorf("memory_limit: %d is below %d (16 MiB): the collector would run all the time", p.MemoryLimit, MinMemoryLimit))
	}
	switch {
	case p.GCPercent < -1:
		errs = append(errs, fmt.Errorf("gc_percent: %d is negative (-1: off)", p.GCPercent))
	case p.GCPercent == -1 && p.MemoryLimit == -1:
		errs = append(errs, errors.New("gc_percent: -1 (off) with memory_limit -1 (none) would never collect"))
	}
	for _, f := range []struct {
		key string
		v   time.Duration
	}{{"retry_min", p.RetryMin}, {"retry_max", p.RetryMax}, {"stuck_after", p.StuckAfter}, {"shutdown_grace", p.ShutdownGrace}} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("%s: %s is negative", f.key, f.v))
		}
	}
	if p.RetryMin > 0 && p.RetryMax > 0 && p.RetryMin > p.RetryMax {
		errs = append(errs, errors.New("retry_min: exceeds retry_max"))
	}
	return errors.Join(errs...)
}

func (l Log) validate() error {
	var errs []error
	switch strings.ToLower(l.Level) {
	case "", "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("level: unknown %q (want debug, info, warn, error)", l.Level))
	}
	switch l.Format {
	case "", "text", "json":
	default:
		errs = append(errs, fmt.Errorf("format: unknown %q (want text or json)", l.Format))
	}
	return errors.Join(errs...)
}
