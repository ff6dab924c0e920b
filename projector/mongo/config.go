package mongo

import (
	"errors"
	"fmt"
	"github.com/rowsync/rowsync/internal/secret"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/rowsync/rowsync/keymap"
)

// The sink's names: Name labels its route, metrics and logs; RuleKey is
// the key of its block in a tables[] entry and of its top-level block
// (Config: the connection and projector-wide settings).
const (
	Name    = "mongo"
	RuleKey = "mongo"
)

// Defaults applied where a field is left at its zero value.
const (
	DefaultBulkSize     = 5000
	DefaultTombstoneTTL = 24 * time.Hour
	// MaxDocumentSize is MongoDB's BSON document limit; a row whose document
	// is larger can never be written and goes to the dead letter.
	MaxDocumentSize = 16 * 1024 * 1024
)

// Decimal modes: how DECIMAL columns and BIGINT UNSIGNED values beyond
// int64 are stored.
const (
	// DecimalDecimal128 stores BSON Decimal128 (exact up to 34 digits;
	// longer values fall back to their text).
	DecimalDecimal128 = "decimal128"
	// DecimalString stores the exact MySQL text ("12.50"), for servers or
	// readers without Decimal128.
	DecimalString = "string"
)

// Reserved field names written by the version guard.
const (
	// DeletedField marks a tombstone: a guarded delete leaves
	// {_id, <version_field>, _rowsync_deleted: true, _rowsync_deleted_at}
	// so that an older, late insert cannot resurrect the row.
	DeletedField = "_rowsync_deleted"
	// DeletedAtField holds the time of the delete; a TTL index on it
	// (tombstone_ttl) removes the tombstone later.
	DeletedAtField = "_rowsync_deleted_at"
)

// Config holds projector-wide settings; the zero value is the default
// except for URI.
type Config struct {
	// URI is the MongoDB connection string (mongodb:// or mongodb+srv://).
	// Required when the projector connects itself (Open), unless URIFile
	// is set.
	URI string `yaml:"uri"`
	// URIFile names a file holding the URI instead (it carries the
	// password; trailing white space trimmed); read when the config is
	// validated.
	URIFile string `yaml:"uri_file"`
	// BulkSize caps the write operations of one BulkWrite; an Apply call
	// with more distinct rows for one collection sends several.
	// Default: 5000
	BulkSize int `yaml:"bulk_size"`
	// Decimal says how DECIMAL values (and BIGINT UNSIGNED beyond int64)
	// are stored: "decimal128" or "string".
	// Default: decimal128
	Decimal string `yaml:"decimal"`
	// WriteConcern is the acknowledgment every bulk write waits for.
	// Default: the URI's, else the deployment's default
	WriteConcern WriteConcern `yaml:"write_concern"`
	// RetryWrites lets the driver retry a write once after a network error
	// or a primary change (retryable writes: replica sets and sharded
	// clusters). Replaying is harmless either way: writes are idempotent.
	// Default: true
	RetryWrites *bool `yaml:"retry_writes"`
}

// WriteConcern is MongoDB's write concern.
type WriteConcern struct {
	// W is how many members must acknowledge: a number (1 or more),
	// "majority", or a custom write concern name. 0 (unacknowledged) is
	// refused: rowsync acks its source only after a confirmed write.
	// Default: unset (the URI's w, else the deployment's default)
	W string `yaml:"w"`
	// J waits for the journal. Default: unset
	J *bool `yaml:"j"`
	// WTimeout bounds each bulk write, its write concern wait included;
	// past it the batch fails as transient and is retried (the driver's
	// client-side operation timeout: driver v2 sends no wtimeout field).
	// Default: 0 (no bound beyond the pipeline's)
	WTimeout time.Duration `yaml:"wtimeout"`
}

// w returns W as the driver wants it: an int or a string; nil when unset.
func (wc WriteConcern) w() (any, error) {
	if wc.W == "" {
		return nil, nil
	}
	if n, err := strconv.Atoi(wc.W); err == nil {
		if n < 1 {
			return nil, fmt.Errorf("%d: a write must be acknowledged (use 1 or more, or majority)", n)
		}
		return n, nil
	}
	return wc.W, nil
}

func (wc WriteConcern) validate() error {
	var errs []error
	if _, err := wc.w(); err != nil {
		errs = append(errs, fmt.Errorf("write_concern.w: %w", err))
	}
	if wc.WTimeout < 0 {
		errs = append(errs, fmt.Errorf("write_concern.wtimeout: must not be negative, got %s", wc.WTimeout))
	}
	return errors.Join(errs...)
}

// Secrets returns the password of the URI, for masking in what rowsync
// prints.
func (c Config) Secrets() []string { return secret.InValue(c.URI, c.URIFile, secret.URLPassword) }

// Validate returns every problem, each prefixed with its key path.
func (c *Config) Validate() error {
	var errs []error
	switch err := secret.FromFile(&c.URI, &c.URIFile, "uri", "uri_file"); {
	case err != nil:
		errs = append(errs, err)
	case c.URI == "":
		errs = append(errs, errors.New("uri: required"))
	case !strings.HasPrefix(c.URI, "mongodb://") && !strings.HasPrefix(c.URI, "mongodb+srv://"):
		errs = append(errs, errors.New("uri: must start with mongodb:// or mongodb+srv://"))
	}
	if err := c.validateOptions(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// validateOptions checks everything but the URI (New takes a client).
func (c Config) validateOptions() error {
	var errs []error
	if c.BulkSize < 0 {
		errs = append(errs, fmt.Errorf("bulk_size: must not be negative, got %d", c.BulkSize))
	}
	switch c.Decimal {
	case "", DecimalDecimal128, DecimalString:
	default:
		errs = append(errs, fmt.Errorf("decimal: unknown mode %q (want decimal128 or string)", c.Decimal))
	}
	if err := c.WriteConcern.validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (c Config) bulkSize() int {
	if c.BulkSize <= 0 {
		return DefaultBulkSize
	}
	return c.BulkSize
}

// TableConfig says how the rows of the tables a rule matches become
// documents.
type TableConfig struct {
	// Database is the target database.
	// Default: the event's database
	Database string `yaml:"database"`
	// Collection is the target collection.
	// Default: the event's table
	Collection string `yaml:"collection"`
	// ID is a key template (see package keymap) rendering the string _id.
	// Default: "" — a single-column primary key's typed value, or for a
	// composite key a sub-document of the key fields in key order
	// ({a: 1, b: "x"}), named as in the document (after rename).
	ID string `yaml:"id"`
	// Rename maps column names to document field names.
	// Default: none
	Rename map[string]string `yaml:"rename"`
	// Include lists the only columns written. Exclusive with Exclude.
	// Default: all columns
	Include []string `yaml:"include"`
	// Exclude lists columns never written. Default: none
	Exclude []string `yaml:"exclude"`
	// Metadata, when set, names a field holding {pos, commit} of the change
	// that wrote the document, for auditing.
	// Default: "" (none)
	Metadata string `yaml:"metadata"`
	// Indexes are created (if missing) when the projector starts, or on
	// first use of a collection whose name depends on the event.
	// Default: none
	Indexes []Index `yaml:"indexes"`
	// VersionField, when set, is the field storing the change's
	// cdc.Position.Version; a change not newer than the stored version is
	// skipped, and deletes leave a tombstone (see DeletedField). Events with
	// Version 0 apply unguarded.
	// Default: "" (no version guard)
	VersionField string `yaml:"version_field"`
	// TombstoneTTL is how long a guarded delete's tombstone lives (a TTL
	// index on DeletedAtField). Only with VersionField.
	// Default: 24h
	TombstoneTTL time.Duration `yaml:"tombstone_ttl"`
	// ShardKey lists the columns of the collection's shard key, in order.
	// Every upsert and delete filter then carries their values beside _id
	// (a sharded collection rejects or scatters single-document writes
	// without them), and an update that changes them (same _id) becomes a
	// delete at the old values and an upsert at the new ones. The columns
	// must be written (not excluded).
	// Default: none (an unsharded collection, or one sharded on _id)
	ShardKey []string `yaml:"shard_key"`
	// DatetimeZone is the time zone the source's DATETIME values are wall
	// clock of (an IANA name); they are stored as the UTC instant.
	// TIMESTAMP values are instants already; DATE stays midnight UTC.
	// Default: UTC
	DatetimeZone string `yaml:"datetime_zone"`
}

// Index is one index to create.
type Index struct {
	// Keys are the indexed fields in order, each ascending (1) or
	// descending (-1). YAML: a list of one-entry maps ([{a: 1}, {b: -1}])
	// or the text "a:1,b:-1".
	Keys IndexKeys `yaml:"keys"`
	// Unique makes the index unique: a row violating it goes to the dead
	// letter.
	Unique bool `yaml:"unique"`
	// Name is the index name.
	// Default: MongoDB's (a_1_b_-1)
	Name string `yaml:"name"`
}

// IndexKey is one field of an index.
type IndexKey struct {
	Field string
	Order int // 1 or -1
}

// IndexKeys is an ordered list of index fields.
type IndexKeys []IndexKey

// ParseIndexKeys parses "a:1,b:-1" (a bare "a" means ascending).
func ParseIndexKeys(s string) (IndexKeys, error) {
	var out IndexKeys
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			return nil, fmt.Errorf("index keys %q: empty field", s)
		}
		field, order, ok := strings.Cut(part, ":")
		k := IndexKey{Field: strings.TrimSpace(field), Order: 1}
		if ok {
			n, err := strconv.Atoi(strings.TrimSpace(order))
			if err != nil {
				return nil, fmt.Errorf("index keys %q: order of %q must be 1 or -1", s, k.Field)
			}
			k.Order = n
		}
		out = append(out, k)
	}
	return out, nil
}

// UnmarshalYAML accepts "a:1,b:-1", a list of one-entry maps, or a list of
// "a:1" strings.
func (k *IndexKeys) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		keys, err := ParseIndexKeys(n.Value)
		if err != nil {
			return err
		}
		*k = keys
		return nil
	case yaml.SequenceNode:
		var out IndexKeys
		for _, item := range n.Content {
			switch item.Kind {
			case yaml.ScalarNode:
				keys, err := ParseIndexKeys(item.Value)
				if err != nil {
					return err
				}
				out = append(out, keys...)
			case yaml.MappingNode:
				for i := 0; i+1 < len(item.Content); i += 2 {
					order, err := strconv.Atoi(item.Content[i+1].Value)
					if err != nil {
						return fmt.Errorf("line %d: index order of %q must be 1 or -1", item.Line, item.Content[i].Value)
					}
					out = append(out, IndexKey{Field: item.Content[i].Value, Order: order})
				}
			default:
				return fmt.Errorf("line %d: index key must be {field: 1} or \"field:1\"", item.Line)
			}
		}
		*k = out
		return nil
	}
	return fmt.Errorf("line %d: index keys must be a list or \"a:1,b:-1\"", n.Line)
}

// SelectedColumns returns Include and Exclude: the columns the rule keeps
// and leaves out (config.ColumnSelector, for the dead letter to hide them).
func (c TableConfig) SelectedColumns() (include, exclude []string) { return c.Include, c.Exclude }

// Validate returns every problem, each prefixed with its key path.
func (c TableConfig) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Database != "" {
		if err := checkDatabase(c.Database); err != nil {
			add("database: %v", err)
		}
	}
	if c.Collection != "" {
		if err := checkCollection(c.Collection); err != nil {
			add("collection: %v", err)
		}
	}
	if c.ID != "" {
		t, err := keymap.Parse(c.ID)
		switch {
		case err != nil:
			add("id: %v", err)
		case !t.UsesRow():
			add("id: template %q reads no column and no {pk}, so every row would share one _id", c.ID)
		}
	}
	targets := map[string]string{}
	for _, col := range slices.Sorted(maps.Keys(c.Rename)) {
		field := c.Rename[col]
		if col == "" {
			add("rename: empty column name")
		}
		if err := checkStoredName(field); err != nil {
			add("rename.%s: %v", col, err)
		} else if field == "_id" {
			add("rename.%s: cannot rename to _id (use id)", col)
		}
		if prev, ok := targets[field]; ok && field != "" {
			add("rename.%s: field %q is also the target of column %q", col, field, prev)
		}
		targets[field] = col
	}
	if len(c.Include) > 0 && len(c.Exclude) > 0 {
		add("include: cannot be combined with exclude")
	}
	for i, name := range c.Include {
		if name == "" {
			add("include[%d]: empty column name", i)
		}
	}
	for i, name := range c.Exclude {
		if name == "" {
			add("exclude[%d]: empty column name", i)
		}
	}
	seen := map[string]bool{}
	for i, col := range c.ShardKey {
		switch {
		case col == "":
			add("shard_key[%d]: empty column name", i)
		case seen[col]:
			add("shard_key[%d]: column %q listed twice", i, col)
		case slices.Contains(c.Exclude, col) || len(c.Include) > 0 && !slices.Contains(c.Include, col):
			add("shard_key[%d]: column %q is not written (include/exclude)", i, col)
		}
		seen[col] = true
	}
	if c.Metadata != "" {
		if err := checkStoredName(c.Metadata); err != nil {
			add("metadata: %v", err)
		} else if c.Metadata == "_id" {
			add("metadata: cannot be _id")
		}
	}
	if c.VersionField != "" {
		if err := checkStoredName(c.VersionField); err != nil {
			add("version_field: %v", err)
		} else if c.VersionField == "_id" || c.VersionField == DeletedField || c.VersionField == DeletedAtField {
			add("version_field: %q is reserved", c.VersionField)
		} else if c.VersionField == c.Metadata {
			add("version_field: same field as metadata")
		}
	}
	switch {
	case c.TombstoneTTL < 0:
		add("tombstone_ttl: must not be negative, got %s", c.TombstoneTTL)
	case c.TombstoneTTL > 0 && c.TombstoneTTL < time.Second:
		add("tombstone_ttl: must be at least 1s, got %s", c.TombstoneTTL)
	case c.TombstoneTTL != 0 && c.VersionField == "":
		add("tombstone_ttl: needs version_field")
	}
	if c.DatetimeZone != "" {
		if _, err := time.LoadLocation(c.DatetimeZone); err != nil {
			add("datetime_zone: unknown time zone %q", c.DatetimeZone)
		}
	}
	for i, ix := range c.Indexes {
		if len(ix.Keys) == 0 {
			add("indexes[%d].keys: required", i)
		}
		for j, k := range ix.Keys {
			if err := checkField(k.Field); err != nil {
				add("indexes[%d].keys[%d]: %v", i, j, err)
			}
			if k.Order != 1 && k.Order != -1 {
				add("indexes[%d].keys[%d]: order of %q must be 1 or -1, got %d", i, j, k.Field, k.Order)
			}
		}
	}
	return errors.Join(errs...)
}

// checkField rejects field paths MongoDB will not take (index keys, where
// a dot names a nested field).
func checkField(f string) error {
	switch {
	case f == "":
		return errors.New("empty field name")
	case strings.HasPrefix(f, "$"):
		return fmt.Errorf("field %q must not start with $", f)
	case strings.ContainsRune(f, 0):
		return fmt.Errorf("field %q contains a NUL byte", f)
	}
	return nil
}

// checkStoredName applies the field name rule of documents: a name that
// starts with $ or holds a dot would be read by MongoDB as an operator or a
// path (and older servers refuse to store it), so the row goes to the dead
// letter; a column can be given a plain name with rename.
func checkStoredName(f string) error {
	if err := checkField(f); err != nil {
		return err
	}
	if strings.Contains(f, ".") {
		return fmt.Errorf("field %q must not contain a dot", f)
	}
	return nil
}

func checkDatabase(name string) error {
	if len(name) > 63 {
		return fmt.Errorf("database name %q is longer than 63 bytes", name)
	}
	if i := strings.IndexAny(name, "/\\. \"$\x00"); i >= 0 {
		return fmt.Errorf("database name %q must not contain %q", name, string(name[i]))
	}
	return nil
}

func checkCollection(name string) error {
	switch {
	case strings.HasPrefix(name, "system."):
		return fmt.Errorf("collection name %q is reserved", name)
	case strings.ContainsAny(name, "$\x00"):
		return fmt.Errorf("collection name %q must not contain $ or NUL", name)
	}
	return nil
}

// Cleartext lists the hosts a mongodb:// URI's password would travel to
// in clear (no tls=true or ssl=true).
func (c Config) Cleartext() []secret.Cleartext {
	u, err := url.Parse(c.URI)
	if err != nil || u.Scheme != "mongodb" || u.User == nil {
		return nil
	}
	q := u.Query()
	if _, ok := u.User.Password(); !ok || q.Get("tls") == "true" || q.Get("ssl") == "true" {
		return nil
	}
	var out []secret.Cleartext
	for _, h := range strings.Split(u.Host, ",") {
		out = append(out, secret.Cleartext{Key: ".uri", Addr: h, What: "the password"})
	}
	return out
}
