package mysqlmeta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/internal/secret"
	"github.com/rowsync/rowsync/metrics"
)

// Defaults of Schemas.
const (
	// DefaultSchemaTimeout bounds one definition read.
	DefaultSchemaTimeout = 5 * time.Second
	// DefaultMinRefresh is the least time between two reads of one table
	// asked for by refresh (a column the cache lacks, a value that does not
	// parse), so a producer that keeps sending a dropped column does not
	// cost a query per message; and how long "no such table" is believed.
	DefaultMinRefresh = time.Second
)

// SchemaConfig is the schema: block of the config: the database whose
// information_schema types the values of typeless formats.
type SchemaConfig struct {
	// DSN is a go-sql-driver DSN ("user:pass@tcp(host:3306)/") of the
	// primary the messages come from (or a replica with the same tables);
	// the user needs SELECT on information_schema only. Required (or
	// DSNFile).
	DSN string `yaml:"dsn"`
	// DSNFile names a file holding the DSN instead (it carries the
	// password; trailing white space trimmed); read when the config is
	// validated.
	DSNFile string `yaml:"dsn_file"`
}

// Secrets returns the password of the DSN, for masking in what rowsync
// prints.
func (c SchemaConfig) Secrets() []string {
	return secret.InValue(c.DSN, c.DSNFile, secret.DSNPassword)
}

// Check is the schema source's connection test for `rowsync check`: its
// information_schema lists the tables.
func (c SchemaConfig) Check(key string) (string, cdc.Pinger) {
	return key + " (column types of typeless formats)", cdc.PingFunc(func(ctx context.Context) error {
		return WithDB(c.DSN, func(db *sql.DB) error {
			_, err := NewCatalog(db).Tables(ctx, nil)
			return err
		})
	})
}

// WithDB opens the server at dsn for fn, and closes it after: the
// connection tests of `rowsync check`.
func WithDB(dsn string, fn func(db *sql.DB) error) error {
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	return fn(db)
}

// Validate reads dsn_file and reports a missing or malformed DSN.
func (c *SchemaConfig) Validate() error {
	if err := secret.FromFile(&c.DSN, &c.DSNFile, "dsn", "dsn_file"); err != nil {
		return err
	}
	if c.DSN == "" {
		return errors.New("dsn: required")
	}
	if _, err := mysql.ParseDSN(c.DSN); err != nil {
		return fmt.Errorf("dsn: %w", err)
	}
	return nil
}

// Schemas is the schema source of typeless formats: it implements
// cdc.Schemas over information_schema, reading a table's definition the
// first time it is asked for, caching it, and reading it again on Forget
// (a DDL message) or on a refresh request at most every MinRefresh.
//
// A read that fails (the database is down, refuses the user, times out)
// is returned at once and not cached: the decoders mark it
// decode.ErrSchemaUnavailable, and the message sources retry the same
// message with capped backoff until the database answers (decode.Retry),
// so an outage stalls the stream instead of dead-lettering good messages.
// Schemas logs the first failure of an outage and the recovery, once each.
type Schemas struct {
	cat *Catalog
	// Timeout bounds one definition read. Default: DefaultSchemaTimeout
	Timeout time.Duration
	// MinRefresh: see DefaultMinRefresh.
	MinRefresh time.Duration
	// Log receives one warning when the database stops answering and one
	// note when it answers again. Default: slog.Default()
	Log    *slog.Logger
	closer func() error

	mu       sync.Mutex
	tables   map[[2]string]*cachedDef
	downFrom time.Time // first failure of the current outage; zero: up
	met      schemaMetrics
}

// schemaMetrics are the schema source's own; no-ops unless Instrument was
// called.
type schemaMetrics struct {
	up       *metrics.Gauge
	failures *metrics.Counter
}

// Instrument registers rowsync_schema_source_up (1 while the last read
// succeeded, 0 during an outage) and rowsync_schema_source_failures_total
// (definition reads that failed; each stalls the message that needed it).
func (s *Schemas) Instrument(m *metrics.Metrics) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.met = schemaMetrics{
		up:       m.Gauge("rowsync_schema_source_up", "1 while the schema source answers, 0 while its reads fail (messages that need it wait).", nil),
		failures: m.Counter("rowsync_schema_source_failures_total", "Table definition reads of the schema source that failed and are retried.", nil),
	}
	if s.downFrom.IsZero() {
		s.met.up.Set(1)
	}
}

var _ metrics.Instrumented = (*Schemas)(nil)

type cachedDef struct {
	def    *cdc.TableDef // nil: no such table
	loaded time.Time
}

var _ cdc.Schemas = (*Schemas)(nil)

// NewSchemas returns a schema source reading through q.
func NewSchemas(q Querier) *Schemas {
	return &Schemas{cat: NewCatalog(q), tables: map[[2]string]*cachedDef{},
		Timeout: DefaultSchemaTimeout, MinRefresh: DefaultMinRefresh}
}

// OpenSchemas opens a small pool on dsn (a go-sql-driver DSN) for a schema
// source; Close closes it. It does not connect.
func OpenSchemas(dsn string) (*Schemas, error) {
	dc, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("dsn: %w", err)
	}
	conn, err := mysql.NewConnector(dc)
	if err != nil {
		return nil, fmt.Errorf("dsn: %w", err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(2)
	s := NewSchemas(db)
	s.closer = db.Close
	return s, nil
}

// Close closes the pool OpenSchemas opened (a NewSchemas pool stays open).
func (s *Schemas) Close() error {
	if s.closer == nil {
		return nil
	}
	return s.closer()
}

// Table implements cdc.Schemas.
func (s *Schemas) Table(ctx context.Context, db, table string, refresh bool) (*cdc.TableDef, error) {
	k := [2]string{db, table}
	s.mu.Lock()
	c := s.tables[k]
	s.mu.Unlock()
	if c != nil {
		age := time.Since(c.loaded)
		switch {
		case c.def != nil && !refresh, age < s.MinRefresh:
			return c.def, nil
		}
	}
	def, err := s.read(ctx, db, table)
	if err != nil {
		return nil, fmt.Errorf("schema of %s.%s: %w", db, table, err)
	}
	s.mu.Lock()
	s.tables[k] = &cachedDef{def: def, loaded: time.Now()}
	s.mu.Unlock()
	return def, nil
}

// read reads db.table's definition once, bounded by Timeout; ErrNoTable
// gives (nil, nil). It keeps track of outages (log, metrics).
func (s *Schemas) read(ctx context.Context, db, table string) (*cdc.TableDef, error) {
	qctx, cancel := context.WithTimeout(ctx, s.Timeout)
	def, err := s.cat.Table(qctx, db, table)
	cancel()
	if errors.Is(err, ErrNoTable) {
		def, err = nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	log := s.Log
	if log == nil {
		log = slog.Default()
	}
	switch {
	case err != nil && ctx.Err() == nil:
		s.met.failures.Inc()
		if s.downFrom.IsZero() {
			s.downFrom = time.Now()
			s.met.up.Set(0)
			log.Warn("schema source unavailable: messages that need it wait and are retried", "err", err)
		}
	case err == nil && !s.downFrom.IsZero():
		log.Info("schema source answers again", "down_for", time.Since(s.downFrom).Round(time.Millisecond))
		s.downFrom = time.Time{}
		s.met.up.Set(1)
	}
	return def, err
}

// Forget implements cdc.Schemas.
func (s *Schemas) Forget(db, table string) {
	s.mu.Lock()
	delete(s.tables, [2]string{db, table})
	s.mu.Unlock()
}
