package redis

import (
	"errors"
	"fmt"
	"time"

	"github.com/rowsync/rowsync/keymap"
)

// The sink's names: Name labels its route, metrics and logs; RuleKey is
// the key of its block in a tables[] entry and of its top-level block
// (Config), and it needs the top-level redis: connection.
const (
	Name    = "redis"
	RuleKey = "redis_hash"
)

// Defaults applied where a field is left at its zero value.
const (
	DefaultKey             = "{db}_{table}_{pk}"
	DefaultTombstoneTTL    = time.Hour
	DefaultTombstoneSuffix = ":rowsync-tomb"
	DefaultScriptKeys      = 256
	DefaultParallel        = 4
)

// Config holds projector-wide settings; the zero value is the default.
type Config struct {
	// ScriptKeys caps how many row keys one MULTI/EXEC transaction
	// replaces or deletes; Redis serves no other client while it runs, so
	// a smaller value keeps that pause short.
	// Default: 256
	ScriptKeys int `yaml:"script_keys"`
	// Parallel caps how many transactions of one Apply call are in flight
	// at once, each on its own connection.
	// Default: 4
	Parallel int `yaml:"parallel"`
}

// Validate returns every problem, each prefixed with its key path.
func (c Config) Validate() error {
	var errs []error
	if c.ScriptKeys < 0 {
		errs = append(errs, fmt.Errorf("script_keys: must not be negative, got %d", c.ScriptKeys))
	}
	if c.Parallel < 0 {
		errs = append(errs, fmt.Errorf("parallel: must not be negative, got %d", c.Parallel))
	}
	return errors.Join(errs...)
}

func (c Config) parallel() int {
	if c.Parallel <= 0 {
		return DefaultParallel
	}
	return c.Parallel
}

func (c Config) scriptKeys() int {
	if c.ScriptKeys <= 0 {
		return DefaultScriptKeys
	}
	return c.ScriptKeys
}

// TableConfig says how the rows of the tables a rule matches become hashes.
type TableConfig struct {
	// Key is the key template (see package keymap); composite primary keys
	// render {pk} as the values joined by ":". It must read the row ({pk}
	// or a column), else every row would share one key.
	// Default: {db}_{table}_{pk}
	Key string `yaml:"key"`
	// Include lists the only columns written to the hash. Exclusive with
	// Exclude. Default: all columns.
	Include []string `yaml:"include"`
	// Exclude lists columns never written to the hash. Default: none.
	Exclude []string `yaml:"exclude"`
	// TTL, when set, makes every write also PEXPIRE the key.
	// Default: 0 (no expiry)
	TTL time.Duration `yaml:"ttl"`
	// VersionField, when set, is the hash field that stores the version
	// (cdc.Position.Version) of the change that wrote the row; a change
	// older than the stored version, or than a delete's tombstone, is
	// skipped. Events with Version 0 apply unguarded.
	// Default: "" (no version guard)
	VersionField string `yaml:"version_field"`
	// TypeCheck, on a table without VersionField, commits through the
	// checked path (staging key and commit script) so that a row key
	// holding a non-hash value is left alone and its changes fail with
	// ErrWrongType, at several times the Redis CPU per row. Off, rowsync
	// owns the key namespace of the table: a row is replaced by DEL+HSET
	// and whatever value was at its key is overwritten. With VersionField
	// the check always happens.
	// Default: false
	TypeCheck bool `yaml:"type_check"`
	// TombstoneTTL is how long a guarded delete remembers its version, so a
	// late older insert cannot resurrect the row. Only with VersionField.
	// Default: 1h
	TombstoneTTL time.Duration `yaml:"tombstone_ttl"`
	// TombstoneSuffix names the tombstone key: the row key plus this
	// suffix when the key has a Redis Cluster hash tag, else
	// "{" + key + "}" + suffix so the two keys share a cluster slot.
	// Only with VersionField.
	// Default: ":rowsync-tomb"
	TombstoneSuffix string `yaml:"tombstone_suffix"`
}

// SelectedColumns returns Include and Exclude: the columns the rule keeps
// and leaves out (config.ColumnSelector, for the dead letter to hide them).
func (c TableConfig) SelectedColumns() (include, exclude []string) { return c.Include, c.Exclude }

// Validate returns every problem, each prefixed with its key path.
func (c TableConfig) Validate() error {
	var errs []error
	if _, err := c.template(); err != nil {
		errs = append(errs, fmt.Errorf("key: %w", err))
	}
	if len(c.Include) > 0 && len(c.Exclude) > 0 {
		errs = append(errs, errors.New("include: cannot be combined with exclude"))
	}
	for i, name := range c.Include {
		if name == "" {
			errs = append(errs, fmt.Errorf("include[%d]: empty column name", i))
		}
	}
	for i, name := range c.Exclude {
		if name == "" {
			errs = append(errs, fmt.Errorf("exclude[%d]: empty column name", i))
		}
	}
	errs = append(errs, checkTTL("ttl", c.TTL)...)
	errs = append(errs, checkTTL("tombstone_ttl", c.TombstoneTTL)...)
	if c.TombstoneSuffix == stageSuffix {
		errs = append(errs, fmt.Errorf("tombstone_suffix: %q is the staging key suffix", stageSuffix))
	}
	if c.VersionField == "" {
		if c.TombstoneTTL != 0 {
			errs = append(errs, errors.New("tombstone_ttl: needs version_field"))
		}
		if c.TombstoneSuffix != "" {
			errs = append(errs, errors.New("tombstone_suffix: needs version_field"))
		}
	}
	return errors.Join(errs...)
}

func checkTTL(path string, d time.Duration) []error {
	switch {
	case d < 0:
		return []error{fmt.Errorf("%s: must not be negative, got %s", path, d)}
	case d > 0 && d < time.Millisecond:
		return []error{fmt.Errorf("%s: must be at least 1ms, got %s", path, d)}
	}
	return nil
}

// template parses the key template and checks it names one key per row.
func (c TableConfig) template() (*keymap.Template, error) {
	raw := c.Key
	if raw == "" {
		raw = DefaultKey
	}
	t, err := keymap.Parse(raw)
	if err != nil {
		return nil, err
	}
	if !t.UsesRow() {
		return nil, fmt.Errorf("template %q reads no column and no {pk}, so every row of a table would share one key", raw)
	}
	return t, nil
}
