// Package config loads rowsync's YAML configuration into typed, validated
// values. ${VAR} and ${VAR:-default} are expanded in every scalar; unknown
// keys are errors; Validate reports every problem at once, each naming its
// key path ("tables[2].redis_hash.key: unknown filter"), so `rowsync run`
// can exit before connecting to anything.
//
// Component settings are the components' own Config types (one folder
// per source or sink); this package only assembles and cross-checks them.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/deadletter"
	"github.com/rowsync/rowsync/invalidator"
	"github.com/rowsync/rowsync/lease"
	"github.com/rowsync/rowsync/mysqlmeta"
	redisproj "github.com/rowsync/rowsync/projector/redis"
	"github.com/rowsync/rowsync/refetch"
	"github.com/rowsync/rowsync/source/binlog"
	"github.com/rowsync/rowsync/source/decode/all"
	"github.com/rowsync/rowsync/source/kafka"
	"github.com/rowsync/rowsync/source/rabbitmq"
)

// Config is the whole file.
type Config struct {
	// Name names the pipeline: checkpoint key, metrics label. Required.
	Name string `yaml:"name"`
	// Source holds exactly one of binlog, kafka, rabbitmq.
	Source Source `yaml:"source"`
	// Lease, for a binlog source, makes processes with the same name take
	// turns: one streams, the others wait as standbys. Needs redis:.
	Lease *lease.Config `yaml:"lease"`
	// Checkpoint says where the binlog position is kept.
	// Default: redis (the redis: block), key rowsync:checkpoint:<name>.
	Checkpoint Checkpoint `yaml:"checkpoint"`
	// Redis is the target of redis_hash tables and the default checkpoint
	// and invalidation store.
	Redis *Redis `yaml:"redis"`
	// InvalidateRedis is the cache Redis the invalidator deletes keys in.
	// Default: the redis: block.
	InvalidateRedis *Redis `yaml:"invalidate_redis"`
	// Invalidate holds invalidator-wide settings (command, broadcast).
	Invalidate invalidator.Config `yaml:"invalidate"`
	// RedisHash holds projector-wide settings of the Redis hash projector.
	RedisHash redisproj.Config `yaml:"redis_hash"`
	// Mongo is the target of mongo tables.
	Mongo *Mongo `yaml:"mongo"`
	// MySQL is read by tables with refetch: true.
	MySQL *refetch.Config `yaml:"mysql"`
	// Schema is the schema source of typeless formats (Debezium without
	// schemas, Maxwell, jsonl) on a kafka or rabbitmq source: column types
	// come from its information_schema. Default: mysql.dsn when mysql: is
	// set, else none (values stay as the format gives them; see README).
	Schema *mysqlmeta.SchemaConfig `yaml:"schema"`
	// DeadLetter says where unappliable changes go.
	// Default: file ./deadletter.jsonl
	DeadLetter DeadLetter `yaml:"deadletter"`
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
	Tables []Table `yaml:"tables"`
}

// Source is the one configured source.
type Source struct {
	Binlog   *binlog.Config   `yaml:"binlog"`
	Kafka    *kafka.Config    `yaml:"kafka"`
	RabbitMQ *rabbitmq.Config `yaml:"rabbitmq"`
}

// Checkpoint chooses the binlog checkpoint store: redis: {} or file: PATH.
type Checkpoint struct {
	Redis *struct {
		// Prefix of the key; the key is <prefix><name>. Default: rowsync:checkpoint:
		Prefix string `yaml:"prefix"`
	} `yaml:"redis"`
	// File is the path of a JSON checkpoint file (written atomically).
	File string `yaml:"file"`
}

// Redis is a Redis connection.
type Redis struct {
	// Addr is host:port. Default: 127.0.0.1:6379
	Addr string `yaml:"addr"`
	// Addrs, when several, selects a Redis Cluster client. Default: none.
	Addrs []string `yaml:"addrs"`
	// DB is the database index (not with a cluster). Default: 0
	DB       int    `yaml:"db"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// PasswordFile is read for the password instead of Password.
	PasswordFile string `yaml:"password_file"`
	// TLS enables TLS with the system roots. Default: false
	TLS bool `yaml:"tls"`
	// PoolSize caps connections. Default: 10 per CPU (go-redis default).
	PoolSize int `yaml:"pool_size"`
}

// DeadLetter says where dead letters go; the deadletter package owns it.
type DeadLetter = deadletter.Config

// Pipeline tunes the pipeline; see package pipeline for each default.
type Pipeline struct {
	// Workers applying in parallel, sharded by primary key. Default: GOMAXPROCS
	Workers int `yaml:"workers"`
	// MaxInFlight batches between source and ack. Default: 8
	MaxInFlight int `yaml:"max_in_flight"`
	// MaxApply events per sink call. Default: 8192
	MaxApply int `yaml:"max_apply"`
	// RetryMin/RetryMax bound the backoff of transient errors. Default: 50ms/10s
	RetryMin time.Duration `yaml:"retry_min"`
	RetryMax time.Duration `yaml:"retry_max"`
	// StuckAfter: no ack for this long while work waits fails /readyz. Default: 60s
	StuckAfter time.Duration `yaml:"stuck_after"`
	// ShutdownGrace bounds the drain on SIGTERM. Default: 30s
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
}

// Admin is the HTTP endpoint for health and metrics.
type Admin struct {
	// Addr to listen on; "off" disables it. Default: 127.0.0.1:9187
	Addr string `yaml:"addr"`
}

// Log configures slog.
type Log struct {
	// Level: debug, info, warn, error. Default: info
	Level string `yaml:"level"`
	// Format: text or json. Default: text
	Format string `yaml:"format"`
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
	Refetch    bool                     `yaml:"refetch"`
	RedisHash  *redisproj.TableConfig   `yaml:"redis_hash"`
	Mongo      *MongoTable              `yaml:"mongo"`
	Invalidate *invalidator.TableConfig `yaml:"invalidate"`
}

// Load reads, expands and validates the file at path.
func Load(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(raw, os.LookupEnv)
}

// Parse decodes and validates YAML. lookup resolves ${VAR}.
func Parse(raw []byte, lookup func(string) (string, bool)) (*Config, error) {
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
	// yaml.v3 only checks unknown keys when decoding bytes, so re-encode.
	expanded, err := yaml.Marshal(&doc)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(expanded))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
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

// Validate returns every problem, each naming its key path.
func (c *Config) Validate() error {
	var errs []error
	add := func(path string, err error) { errs = append(errs, withPath(path, err)...) }

	if c.Name == "" {
		add("name", plain("required"))
	} else if !nameRE.MatchString(c.Name) {
		add("name", fmt.Errorf("%q: use letters, digits, '.', '_' and '-'", c.Name))
	}

	sources := 0
	if s := c.Source.Binlog; s != nil {
		sources++
		add("source.binlog", s.Validate())
	}
	if s := c.Source.Kafka; s != nil {
		sources++
		add("source.kafka", s.Validate())
		add("source.kafka.format", checkFormat(s.Format))
	}
	if s := c.Source.RabbitMQ; s != nil {
		sources++
		add("source.rabbitmq", s.Validate())
		add("source.rabbitmq.format", checkFormat(s.Format))
	}
	switch sources {
	case 0:
		add("source", plain("required: one of binlog, kafka, rabbitmq"))
	case 1:
	default:
		add("source", plain("only one of binlog, kafka, rabbitmq may be set"))
	}

	if c.Lease != nil {
		add("lease", c.Lease.Validate())
		if c.Source.Binlog == nil {
			add("lease", plain("only for a binlog source (Kafka groups and RabbitMQ single-active-consumer queues coordinate consumers themselves)"))
		}
		if c.Redis == nil {
			add("lease", plain("needs the top-level redis: block"))
		}
	}
	if c.Checkpoint.Redis != nil && c.Checkpoint.File != "" {
		add("checkpoint", plain("set redis or file, not both"))
	}
	if c.Source.Binlog != nil && c.Checkpoint.File == "" && c.Redis == nil {
		add("checkpoint", plain("the default checkpoint store is Redis: add a redis: block or set checkpoint.file"))
	}
	if c.Redis != nil {
		add("redis", c.Redis.validate())
	}
	if c.InvalidateRedis != nil {
		add("invalidate_redis", c.InvalidateRedis.validate())
	}
	add("invalidate", c.Invalidate.Validate())
	add("redis_hash", c.RedisHash.Validate())
	if c.Mongo != nil {
		add("mongo", c.Mongo.Validate())
	}
	if c.MySQL != nil {
		add("mysql", c.MySQL.Validate())
	}
	if c.Schema != nil {
		add("schema", c.Schema.Validate())
		if c.Source.Binlog != nil {
			add("schema", plain("a binlog source reads column types itself: remove schema:"))
		}
	}
	add("deadletter", c.DeadLetter.Validate())
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
	for i, t := range c.Tables {
		p := fmt.Sprintf("tables[%d]", i)
		if t.Match == "" {
			add(p+".match", plain("required"))
		} else if _, err := cdc.CompileMatch(t.Match); err != nil {
			add(p+".match", err)
		}
		if t.RedisHash == nil && t.Mongo == nil && t.Invalidate == nil {
			add(p, plain("no sink: set redis_hash, mongo or invalidate"))
		}
		if t.RedisHash != nil {
			add(p+".redis_hash", t.RedisHash.Validate())
			if c.Redis == nil {
				add(p+".redis_hash", plain("needs the top-level redis: block"))
			}
		}
		if t.Mongo != nil {
			add(p+".mongo", t.Mongo.Validate())
			if c.Mongo == nil {
				add(p+".mongo", plain("needs the top-level mongo: block"))
			}
		}
		if t.Invalidate != nil {
			add(p+".invalidate", t.Invalidate.Validate())
			if c.Redis == nil && c.InvalidateRedis == nil {
				add(p+".invalidate", plain("needs invalidate_redis: or redis:"))
			}
		}
		if t.Refetch && c.MySQL == nil {
			add(p+".refetch", plain("needs the top-level mysql: block"))
		}
		for j, col := range t.PK {
			if col == "" {
				add(fmt.Sprintf("%s.pk[%d]", p, j), plain("empty column name"))
			}
		}
	}
	return errors.Join(errs...)
}

// componentKey matches the key path a component's own Validate puts in
// front of its message ("addr: ...", "tables[0].key: ...").
var componentKey = regexp.MustCompile(`^[a-z_][a-z0-9_]*(\[\d+\])*(\.[a-z_][a-z0-9_]*(\[\d+\])*)*: `)

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

func checkFormat(f string) error {
	if f == "" {
		return plainError{fmt.Errorf("required (one of %s)", strings.Join(all.Names(), ", "))}
	}
	if _, ok := all.Formats[f]; !ok {
		return fmt.Errorf("unknown format %q (want one of %s)", f, strings.Join(all.Names(), ", "))
	}
	return nil
}

func (r *Redis) validate() error {
	var errs []error
	if len(r.Addrs) > 1 && r.DB != 0 {
		errs = append(errs, errors.New("db: a cluster has only db 0"))
	}
	if r.DB < 0 {
		errs = append(errs, fmt.Errorf("db: %d out of range", r.DB))
	}
	if r.Password != "" && r.PasswordFile != "" {
		errs = append(errs, errors.New("password_file: set password or password_file, not both"))
	}
	if r.PasswordFile != "" {
		if _, err := os.Stat(r.PasswordFile); err != nil {
			errs = append(errs, fmt.Errorf("password_file: %w", err))
		}
	}
	if r.PoolSize < 0 {
		errs = append(errs, errors.New("pool_size: must not be negative"))
	}
	return errors.Join(errs...)
}

func (p Pipeline) validate() error {
	var errs []error
	if p.Workers < 0 || p.MaxInFlight < 0 || p.MaxApply < 0 {
		errs = append(errs, errors.New("workers, max_in_flight and max_apply must not be negative"))
	}
	if p.RetryMin < 0 || p.RetryMax < 0 || p.StuckAfter < 0 || p.ShutdownGrace < 0 {
		errs = append(errs, errors.New("durations must not be negative"))
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

// SchemaDSN is the DSN of the schema source typeless formats use: schema.dsn,
// else mysql.dsn; "" for none, and always for a binlog source (which types
// values itself).
func (c *Config) SchemaDSN() string {
	switch {
	case c.Source.Binlog != nil:
		return ""
	case c.Schema != nil:
		return c.Schema.DSN
	case c.MySQL != nil:
		return c.MySQL.DSN
	}
	return ""
}
