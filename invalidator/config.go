package invalidator

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/rowsync/rowsync/keymap"
)

// The sink's names: Name labels its route, metrics and logs; RuleKey is
// the key of its block in a tables[] entry and of its top-level block
// (Config). It deletes keys in invalidate_redis:, else redis:.
const (
	Name    = "invalidate"
	RuleKey = "invalidate"
)

// Config is the invalidator's top-level block. Command and broadcast are
// settings of the whole invalidator, not of a table: every table deletes
// keys of the same cache Redis, and near caches listen on one channel.
type Config struct {
	// Name names this invalidator's delayed-delete queue, the sorted set
	// "rowsync:invalidate:delayed:{<name>}". Two rowsync processes that
	// share a name share (and both drain) one queue.
	// Default: "default".
	Name string `yaml:"name"`
	// Command removes the keys: "unlink" (the server frees memory in the
	// background) or "del".
	// Default: "unlink".
	Command string `yaml:"command"`
	// BatchSize caps the keys in one UNLINK/DEL, ZADD or PUBLISH, and the
	// keys one scheduler pass pops.
	// Default: 500.
	BatchSize int `yaml:"batch_size"`
	// Poll is the longest the delayed-delete scheduler sleeps between
	// looks at its queue; it wakes earlier when the next entry is due
	// sooner. A second delete fires at most about Poll after it is due.
	// Default: 20ms.
	Poll time.Duration `yaml:"poll"`
	// Broadcast publishes invalidated keys for in-process near caches.
	// Default: off.
	Broadcast Broadcast `yaml:"broadcast"`
}

// Broadcast configures publishing of invalidated keys on a Redis pub/sub
// channel. Each message is the keys of one delete command as a JSON array
// of strings (at most BatchSize keys per message), so any key, one holding
// "\n" included, reads back as itself; a subscriber decodes the array and
// drops each key. Delayed second deletes are published too.
// Pub/sub is fire-and-forget: a subscriber that is disconnected misses
// messages, so near caches should also expire entries on a short TTL and
// flush themselves when they reconnect.
type Broadcast struct {
	// Channel is the pub/sub channel, e.g. "rowsync:invalidations".
	// Default: "" (no broadcast).
	Channel string `yaml:"channel"`
}

// TableConfig is the invalidator's per-table block.
type TableConfig struct {
	// Keys are the cache keys a row feeds, as key templates ("user:{id}",
	// "user:email:{email|lower}"); see package keymap. Required.
	Keys []KeySpec `yaml:"keys"`
	// Delay schedules a second delete of every key this long after the
	// first, which removes a stale value that a reader loaded before the
	// commit and SET after the first delete. It must exceed the longest
	// read→SET window of the application's readers.
	// Default: 0 (no second delete).
	Delay time.Duration `yaml:"delay"`
	// Backfill evicts the keys of rows a backfill reads (`rowsync
	// backfill`, `verify --repair`) as if they were inserts. A backfilled
	// row is MySQL's current row, so a cache built from MySQL holds
	// nothing stale for it; turn this on when the cache may hold values
	// written while the pipeline was not invalidating them.
	// Default: false (backfilled rows evict nothing).
	Backfill bool `yaml:"backfill"`
}

// KeySpec is one key template of a table. In YAML it is either a plain
// string ("user:{id}") or a mapping
//
//	{key: "user:email:{email|lower}", when_changed: [email]}
type KeySpec struct {
	// Key is the key template. Required.
	Key string `yaml:"key"`
	// WhenChanged limits the eviction on update to updates that change
	// one of these columns (the columns need not be in the template).
	// Inserts and deletes always evict. Default: evict on every update.
	WhenChanged []string `yaml:"when_changed"`

	// whenChangedSet records an explicit when_changed, so an empty list
	// can be reported rather than read as "any change".
	whenChangedSet bool
}

// UnmarshalYAML accepts a string or a {key, when_changed} mapping.
func (k *KeySpec) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*k = KeySpec{}
		return n.Decode(&k.Key)
	case yaml.MappingNode:
		*k = KeySpec{}
		// Node.Decode does not inherit KnownFields, so check names here.
		for i := 0; i+1 < len(n.Content); i += 2 {
			name, val := n.Content[i].Value, n.Content[i+1]
			switch name {
			case "key":
				if err := val.Decode(&k.Key); err != nil {
					return fmt.Errorf("key: %w", err)
				}
			case "when_changed":
				if err := val.Decode(&k.WhenChanged); err != nil {
					return fmt.Errorf("when_changed: %w", err)
				}
				k.whenChangedSet = true
			default:
				return fmt.Errorf("line %d: unknown field %q in key (want key, when_changed)", n.Content[i].Line, name)
			}
		}
		return nil
	}
	return fmt.Errorf("line %d: a key is a template string or {key: ..., when_changed: [...]}", n.Line)
}

// MarshalYAML writes a plain string when there is no when_changed.
func (k KeySpec) MarshalYAML() (any, error) {
	if len(k.WhenChanged) == 0 && !k.whenChangedSet {
		return k.Key, nil
	}
	return struct {
		Key         string   `yaml:"key"`
		WhenChanged []string `yaml:"when_changed"`
	}{k.Key, k.WhenChanged}, nil
}

// Defaults.
const (
	defaultName      = "default"
	defaultCommand   = "unlink"
	defaultBatchSize = 500
	defaultPoll      = 20 * time.Millisecond
	maxBatchSize     = 5000 // Lua unpack() has a stack limit near 8000
)

// Validate returns every problem of the block, each starting with its key
// path.
func (c Config) Validate() error {
	var errs []error
	if strings.ContainsAny(c.Name, "{}\n ") {
		errs = append(errs, fmt.Errorf("name: %q must not contain braces, spaces or newlines", c.Name))
	}
	switch strings.ToLower(c.Command) {
	case "", "unlink", "del":
	default:
		errs = append(errs, fmt.Errorf("command: %q is not unlink or del", c.Command))
	}
	if c.BatchSize < 0 || c.BatchSize > maxBatchSize {
		errs = append(errs, fmt.Errorf("batch_size: %d out of range 1..%d (0 for the default)", c.BatchSize, maxBatchSize))
	}
	if c.Poll < 0 {
		errs = append(errs, fmt.Errorf("poll: negative duration %s", c.Poll))
	}
	return errors.Join(errs...)
}

// Validate returns every problem of a table block, each starting with its
// key path.
func (t TableConfig) Validate() error {
	_, err := t.compile()
	return err
}

func (c Config) withDefaults() Config {
	if c.Name == "" {
		c.Name = defaultName
	}
	c.Command = strings.ToLower(c.Command)
	if c.Command == "" {
		c.Command = defaultCommand
	}
	if c.BatchSize == 0 {
		c.BatchSize = defaultBatchSize
	}
	if c.Poll == 0 {
		c.Poll = defaultPoll
	}
	return c
}

// compiled is a validated TableConfig with parsed templates.
type compiled struct {
	keys     []compiledKey
	delay    time.Duration
	backfill bool
}

type compiledKey struct {
	tpl  *keymap.Template
	when []string
}

func (t TableConfig) compile() (compiled, error) {
	var errs []error
	var out compiled
	if len(t.Keys) == 0 {
		errs = append(errs, errors.New("keys: at least one key template required"))
	}
	for i, k := range t.Keys {
		tpl, err := keymap.Parse(k.Key)
		if err != nil {
			errs = append(errs, fmt.Errorf("keys[%d]: %w", i, err))
		}
		if k.whenChangedSet && len(k.WhenChanged) == 0 {
			errs = append(errs, fmt.Errorf("keys[%d].when_changed: empty list (omit it to evict on every update)", i))
		}
		for j, c := range k.WhenChanged {
			if strings.TrimSpace(c) == "" {
				errs = append(errs, fmt.Errorf("keys[%d].when_changed[%d]: empty column name", i, j))
			}
		}
		out.keys = append(out.keys, compiledKey{tpl: tpl, when: k.WhenChanged})
	}
	if t.Delay < 0 {
		errs = append(errs, fmt.Errorf("delay: negative duration %s", t.Delay))
	}
	out.delay = t.Delay
	out.backfill = t.Backfill
	if err := errors.Join(errs...); err != nil {
		return compiled{}, err
	}
	return out, nil
}
