package backfill

import (
	"errors"
	"fmt"
	"time"

	"github.com/rowsync/rowsync/refetch"
)

// Config is the top-level backfill: block: how the process that owns the
// stream runs backfills. Every field may be left out.
type Config struct {
	// Chunk is rows per chunk query and per batch, unless a request sets
	// its own (`rowsync backfill --chunk`).
	// Default: 5000 (at most 10000)
	Chunk int `yaml:"chunk"`
	// Method is how a chunk's watermarks are taken: auto, snapshot
	// (MariaDB: a consistent-snapshot read and the binlog position of that
	// snapshot) or locking_read (MySQL: binlog end, a shared locking read,
	// binlog end again; MySQL 8.0.22+ needs SELECT plus one of LOCK
	// TABLES, UPDATE or DELETE on the table). auto picks snapshot on
	// MariaDB and locking_read on MySQL.
	// Default: auto
	Method Method `yaml:"method"`
	// Poll is how often the owner looks for new requests and
	// cancellations.
	// Default: 1s
	Poll time.Duration `yaml:"poll"`
}

// Defaults of Config.
const (
	DefaultChunk = 5000
	DefaultPoll  = time.Second
)

// Validate returns every problem, each naming its key.
func (c Config) Validate() error {
	var errs []error
	if c.Chunk < 0 || c.Chunk > refetch.MaxChunkSize {
		errs = append(errs, fmt.Errorf("chunk: must be between 1 and %d (0 for the default), got %d", refetch.MaxChunkSize, c.Chunk))
	}
	switch c.Method {
	case "", MethodAuto, MethodSnapshot, MethodLockingRead:
	default:
		errs = append(errs, fmt.Errorf("method: %q is not auto, snapshot or locking_read", c.Method))
	}
	if c.Poll < 0 {
		errs = append(errs, fmt.Errorf("poll: negative duration %s", c.Poll))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.Chunk == 0 {
		c.Chunk = DefaultChunk
	}
	if c.Method == "" {
		c.Method = MethodAuto
	}
	if c.Poll == 0 {
		c.Poll = DefaultPoll
	}
	return c
}
