package binlog

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/internal/secret"
	"github.com/rowsync/rowsync/internal/tlsconf"
	"github.com/rowsync/rowsync/mysqlmeta"
)

// Defaults of Config.
const (
	DefaultBatchSize    = 4096
	DefaultMaxWait      = 20 * time.Millisecond
	DefaultIdleAck      = time.Second
	DefaultHeartbeat    = time.Second
	DefaultReadTimeout  = 30 * time.Second
	DefaultBackoffMax   = 10 * time.Second
	DefaultReadAhead    = 64
	DefaultCheckpoint   = 100 * time.Millisecond
	defaultBackoffStart = 100 * time.Millisecond
)

// Name is the binlog source's key under source: in the config file, and its
// label in logs.
const Name = "binlog"

// Config configures a binlog Source.
type Config struct {
	// Addr is the server's host:port. Default: 127.0.0.1:3306
	Addr string `yaml:"addr"`
	// User needs REPLICATION SLAVE, REPLICATION CLIENT and SELECT on
	// information_schema. Default: root
	User string `yaml:"user"`
	// Password of User. Default: empty
	Password string `yaml:"password"`
	// PasswordFile names a file holding the password instead (trailing
	// white space trimmed); read when the config is validated.
	PasswordFile string `yaml:"password_file"`
	// Flavor is "mysql" or "mariadb". Default: detected from the server version.
	Flavor string `yaml:"flavor"`
	// ServerID is the replica id the source registers with; it must differ
	// from the server's and every other replica's. Default: random in
	// [1<<28, 1<<31).
	ServerID uint32 `yaml:"server_id"`
	// Include lists regexes matched against "db.table" (anchored); only
	// matching tables are emitted. Default: every table outside the system
	// schemas (mysql, sys, performance_schema, information_schema).
	Include []string `yaml:"include"`
	// Exclude lists regexes on "db.table" (anchored) that are never
	// emitted, even if included. Default: none
	Exclude []string `yaml:"exclude"`
	// Start is where to begin when the checkpoint store has no position:
	// "current" (the server's binlog end now), "FILE:POS"
	// ("mysql-bin.000003:4"), or a GTID set ("0-1-42" for MariaDB,
	// "uuid:1-42" for MySQL). Default: current
	Start string `yaml:"start"`
	// BatchSize caps the events of one batch. Default: 4096
	BatchSize int `yaml:"batch_size"`
	// ReadAhead is how many binlog events (a rows event holds the rows of
	// up to binlog_row_event_max_size, 8 KiB by default) the replication
	// connection may decode ahead of the batches; it then stops reading
	// until they are taken. It bounds the memory of a backlog that
	// arrives faster than the sinks apply it (go-mysql's own default,
	// 10240, held some 100 MiB while draining; 256 still held 13 of the
	// drain's 49 MiB of live heap). Default: 64
	ReadAhead int `yaml:"read_ahead"`
	// MaxWait is the longest a batch waits for more events once it holds
	// one. A batch closes earlier, at once, when no further event is
	// already received and it ends at a transaction boundary (or its open
	// transaction has been read for MaxWait already): an idle server's lone
	// commit goes out without delay, while under load batches fill up with
	// what has arrived. Default: 20ms
	MaxWait time.Duration `yaml:"max_wait"`
	// IdleAck is how long Next waits before returning an empty batch whose
	// only content is a checkpoint move (transactions on tables that are
	// not emitted). Default: 1s
	IdleAck time.Duration `yaml:"idle_ack"`
	// Heartbeat is the period at which an idle server sends heartbeats.
	// Default: 1s
	Heartbeat time.Duration `yaml:"heartbeat"`
	// ReadTimeout declares the connection dead when nothing (not even a
	// heartbeat) arrives for this long (up to a sixteenth longer: see
	// lazyDeadlineConn); the source then reconnects. Default: 30s
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// BackoffMax caps the wait between reconnect attempts (exponential from
	// 100ms, with jitter); the source retries for ever. Default: 10s
	BackoffMax time.Duration `yaml:"backoff_max"`
	// CheckpointInterval is the least time between two checkpoint writes:
	// acks only record the position, and the newest one is saved in the
	// background at most this often (the first after a quiet spell at
	// once), and on Close and Flush. A crash loses at most this much of the
	// checkpoint: those changes are delivered again on restart, which the
	// sinks apply idempotently. Default: 100ms
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`

	// TLS secures both connections to the server (queries and the
	// replication stream); off unless enabled. With TLS, MySQL 8's
	// caching_sha2_password sends the password inside TLS; without it the
	// clients exchange it under the server's RSA key.
	TLS TLSConfig `yaml:"tls"`

	// Refetched reports the tables whose rows the pipeline reads again by
	// primary key (tables[].refetch). For them a row image that lacks
	// columns (binlog_row_image MINIMAL or NOBLOB, a partial JSON update
	// without the previous value) is enough; for any other table it stops
	// the stream with ErrUnsupported. Set by the wiring, not from YAML.
	// Default: nil, no table is refetched.
	Refetched func(db, table string) bool `yaml:"-"`
	// AllRefetched says every mapped table is read again by key, so Ready
	// accepts a server that logs partial row images. Set by the wiring,
	// not from YAML. Default: false.
	AllRefetched bool `yaml:"-"`
	// OnDDL receives every schema change statement the stream carries
	// (CREATE, ALTER, DROP, RENAME, TRUNCATE), with the tables it names, so
	// the wiring can report one the sinks cannot mirror. Called from Next;
	// it must be quick. Set by the wiring, not from YAML. Default: nil.
	OnDDL func(cdc.DDL) `yaml:"-"`
}

// TLSConfig configures TLS to the server; ServerName defaults to the host
// of addr.
type TLSConfig = tlsconf.Config

// TLSClient builds the TLS client config for the server, or nil when TLS
// is off. Errors name their key ("tls.ca_file: ...").
func (c *Config) TLSClient() (*tls.Config, error) {
	addr := c.Addr
	if addr == "" {
		addr = mysqlmeta.DefaultAddr
	}
	host, _, _ := splitAddr(addr)
	return c.TLS.Client("tls.", host)
}

// Secrets returns the password, for masking in what rowsync prints.
func (c Config) Secrets() []string {
	return append([]string{c.Password}, secret.File(c.PasswordFile)...)
}

// Validate reports every problem at once, each prefixed by its key.
func (c *Config) Validate() error {
	var errs []error
	if err := secret.FromFile(&c.Password, &c.PasswordFile, "password", "password_file"); err != nil {
		errs = append(errs, err)
	}
	switch c.Flavor {
	case "", mysql.MySQLFlavor, mysql.MariaDBFlavor:
	default:
		errs = append(errs, fmt.Errorf("flavor: unknown %q (want mysql or mariadb)", c.Flavor))
	}
	if c.Addr != "" {
		if _, _, err := splitAddr(c.Addr); err != nil {
			errs = append(errs, fmt.Errorf("addr: %w", err))
		}
	}
	if _, err := mysqlmeta.NewFilter(c.Include, c.Exclude); err != nil {
		errs = append(errs, err)
	}
	if tlsErrs := c.TLS.Validate("tls."); len(tlsErrs) > 0 {
		errs = append(errs, tlsErrs...)
	} else if _, err := c.TLSClient(); err != nil {
		errs = append(errs, err)
	}
	if _, err := parseStart(c.Start, c.Flavor); err != nil {
		errs = append(errs, fmt.Errorf("start: %w", err))
	}
	if c.BatchSize < 0 {
		errs = append(errs, fmt.Errorf("batch_size: %d is negative", c.BatchSize))
	}
	if c.ReadAhead < 0 {
		errs = append(errs, fmt.Errorf("read_ahead: %d is negative", c.ReadAhead))
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"max_wait", c.MaxWait}, {"idle_ack", c.IdleAck}, {"heartbeat", c.Heartbeat}, {"read_timeout", c.ReadTimeout}, {"backoff_max", c.BackoffMax}, {"checkpoint_interval", c.CheckpointInterval}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s: %v is negative", d.key, d.v))
		}
	}
	hb, rt := c.Heartbeat, c.ReadTimeout
	if hb == 0 {
		hb = DefaultHeartbeat
	}
	if rt == 0 {
		rt = DefaultReadTimeout
	}
	if rt <= hb {
		errs = append(errs, fmt.Errorf("read_timeout: %v must exceed heartbeat %v", rt, hb))
	}
	return errors.Join(errs...)
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Addr == "" {
		c.Addr = mysqlmeta.DefaultAddr
	}
	if c.User == "" {
		c.User = mysqlmeta.DefaultUser
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.ReadAhead == 0 {
		c.ReadAhead = DefaultReadAhead
	}
	if c.MaxWait == 0 {
		c.MaxWait = DefaultMaxWait
	}
	if c.IdleAck == 0 {
		c.IdleAck = DefaultIdleAck
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = DefaultHeartbeat
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = DefaultBackoffMax
	}
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = DefaultCheckpoint
	}
	return c
}

func splitAddr(addr string) (string, uint16, error) {
	i := strings.LastIndexByte(addr, ':')
	if i <= 0 {
		return "", 0, fmt.Errorf("%q is not host:port", addr)
	}
	port, err := strconv.ParseUint(addr[i+1:], 10, 16)
	if err != nil || port == 0 {
		return "", 0, fmt.Errorf("%q has no valid port", addr)
	}
	return strings.Trim(addr[:i], "[]"), uint16(port), nil
}

// startSpec is a parsed Config.Start.
type startSpec struct {
	current bool
	file    string
	pos     uint64
	gtid    string
}

// parseStart reads "current", "FILE:POS" or a GTID set. flavor may be
// empty (not yet detected): then a GTID set of either flavor is accepted.
func parseStart(s, flavor string) (startSpec, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.EqualFold(s, "current") {
		return startSpec{current: true}, nil
	}
	if i := strings.LastIndexByte(s, ':'); i > 0 && strings.Count(s, ":") == 1 {
		if _, ok := cdc.BinlogFileSeq(s[:i]); ok {
			pos, err := strconv.ParseUint(s[i+1:], 10, 32)
			if err != nil || pos < 4 {
				return startSpec{}, fmt.Errorf("%q: position must be a number >= 4", s)
			}
			return startSpec{file: s[:i], pos: pos}, nil
		}
	}
	flavors := []string{flavor}
	if flavor == "" {
		flavors = []string{mysql.MariaDBFlavor, mysql.MySQLFlavor}
	}
	for _, f := range flavors {
		if _, err := mysql.ParseGTIDSet(f, s); err == nil {
			return startSpec{gtid: s}, nil
		}
	}
	return startSpec{}, fmt.Errorf("%q is neither current, FILE:POS nor a GTID set", s)
}

// tableFilter caches, per table, the include/exclude decision.
type tableFilter struct {
	f     *mysqlmeta.Filter
	cache map[string]bool
}

func newTableFilter(include, exclude []string) (*tableFilter, error) {
	f, err := mysqlmeta.NewFilter(include, exclude)
	if err != nil {
		return nil, err
	}
	return &tableFilter{f: f, cache: map[string]bool{}}, nil
}

func (f *tableFilter) wants(key, db, table string) bool {
	if v, ok := f.cache[key]; ok {
		return v
	}
	ok := f.f.Match(db, table)
	f.cache[key] = ok
	return ok
}
