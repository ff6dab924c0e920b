package refetch

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/internal/secret"
	"github.com/rowsync/rowsync/mysqlmeta"
)

// Defaults applied where a Config field is left at its zero value.
const (
	DefaultMaxOpenConns = 4
	DefaultChunkSize    = 500
	DefaultTimeout      = 5 * time.Second
	// MaxChunkSize bounds chunk_size so one query stays well inside
	// max_allowed_packet even with wide composite keys.
	MaxChunkSize = 10000
)

// Config says where and how rows are re-read. The zero value of each field
// except DSN means its default.
//
// Point DSN at the primary. A replica that lags behind the change stream
// can return a row older than the change that triggered the re-read (or
// report a just-inserted row as missing, which becomes a Delete); the sinks
// would then hold that older state until the row changes again.
type Config struct {
	// DSN is a go-sql-driver/mysql DSN, e.g. "user:pass@tcp(127.0.0.1:3306)/".
	// The user needs SELECT on the refetched tables and on
	// information_schema. rowsync forces time_zone='+00:00' (so TIMESTAMP
	// text is UTC), interpolateParams=true (one round trip per query, text
	// protocol) and parseTime=false; charsets that forbid interpolation
	// (big5, gbk, sjis, cp932, gb2312) are therefore not supported.
	// Required (or DSNFile).
	DSN string `yaml:"dsn"`
	// DSNFile names a file holding the DSN instead (it carries the
	// password; trailing white space trimmed); read when the config is
	// validated.
	DSNFile string `yaml:"dsn_file"`
	// MaxOpenConns bounds the connection pool, and so the queries in
	// flight at once across all pipeline shards. Default: 4
	MaxOpenConns int `yaml:"max_open_conns"`
	// ChunkSize is the most primary keys in one IN (...) query; a batch
	// with more keys of one table is read in several queries.
	// Default: 500 (at most 10000)
	ChunkSize int `yaml:"chunk_size"`
	// Timeout bounds one query (including reading its rows). A query that
	// runs out of time is a transient error: the pipeline retries.
	// Default: 5s
	Timeout time.Duration `yaml:"timeout"`
}

// Secrets returns the password of the DSN, for masking in what rowsync
// prints.
func (c Config) Secrets() []string { return secret.InValue(c.DSN, c.DSNFile, secret.DSNPassword) }

// Validate returns every problem at once, each prefixed with its key path.
func (c *Config) Validate() error {
	var errs []error
	if err := secret.FromFile(&c.DSN, &c.DSNFile, "dsn", "dsn_file"); err != nil {
		errs = append(errs, err)
	} else if c.DSN == "" {
		errs = append(errs, errors.New("dsn: required"))
	} else if _, err := mysql.ParseDSN(c.DSN); err != nil {
		errs = append(errs, fmt.Errorf("dsn: %w", err))
	}
	if c.MaxOpenConns < 0 {
		errs = append(errs, fmt.Errorf("max_open_conns: must not be negative, got %d", c.MaxOpenConns))
	}
	if c.ChunkSize < 0 || c.ChunkSize > MaxChunkSize {
		errs = append(errs, fmt.Errorf("chunk_size: must be between 0 and %d, got %d", MaxChunkSize, c.ChunkSize))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout: must not be negative, got %s", c.Timeout))
	} else if c.Timeout > 0 && c.Timeout < time.Millisecond {
		errs = append(errs, fmt.Errorf("timeout: must be at least 1ms, got %s", c.Timeout))
	}
	return errors.Join(errs...)
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.MaxOpenConns <= 0 {
		c.MaxOpenConns = DefaultMaxOpenConns
	}
	if c.ChunkSize <= 0 {
		c.ChunkSize = DefaultChunkSize
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

// Check is the connection test for `rowsync check`: the server answers a
// ping.
func (c Config) Check(key string) (string, cdc.Pinger) {
	return key + " (refetch)", cdc.PingFunc(func(ctx context.Context) error {
		return mysqlmeta.WithDB(c.DSN, func(db *sql.DB) error { return db.PingContext(ctx) })
	})
}
