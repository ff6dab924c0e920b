package mysqlmeta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"github.com/rowsync/rowsync/internal/secret"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/rowsync/rowsync/cdc"
)

// Defaults of Schemas.
const (
	// DefaultSchemaTimeout bounds one definition read.
	DefaultSchemaTimeout = 5 * time.Second
	// DefaultPatience is how long Table keeps retrying a database that does
	// not answer before it gives up.
	DefaultPatience = time.Minute
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
	// the user needs SELECT on information_schema only. Required.
	DSN string `yaml:"dsn"`
}

// Secrets returns the password of the DSN, for masking in what rowsync
// prints.
func (c SchemaConfig) Secrets() []string { return secret.DSNPassword(c.DSN) }

// Validate reports a missing or malformed DSN.
func (c SchemaConfig) Validate() error {
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
type Schemas struct {
	cat *Catalog
	// Timeout bounds one definition read. Default: DefaultSchemaTimeout
	Timeout time.Duration
	// MinRefresh: see DefaultMinRefresh.
	MinRefresh time.Duration
	// Patience is how long Table retries a read that fails (the database
	// is down, a timeout), with capped backoff, before it returns the
	// error: meanwhile the decoder, and so the source, waits instead of
	// rejecting good messages. Default: DefaultPatience
	Patience time.Duration
	closer   func() error
	stop     chan struct{} // closed by Close: waits end at once
	stopOnce sync.Once

	mu     sync.Mutex
	tables map[[2]string]*cachedDef
}

type cachedDef struct {
	def    *cdc.TableDef // nil: no such table
	loaded time.Time
}

var _ cdc.Schemas = (*Schemas)(nil)

// NewSchemas returns a schema source reading through q.
func NewSchemas(q Querier) *Schemas {
	return &Schemas{cat: NewCatalog(q), tables: map[[2]string]*cachedDef{},
		Timeout: DefaultSchemaTimeout, MinRefresh: DefaultMinRefresh, Patience: DefaultPatience, stop: make(chan struct{})}
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

// Close ends any retry in progress and closes the pool OpenSchemas opened
// (a NewSchemas pool stays open).
func (s *Schemas) Close() error {
	s.stopOnce.Do(func() { close(s.stop) })
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

// read reads db.table's definition, retrying failures with capped backoff
// for Patience; ErrNoTable gives (nil, nil).
func (s *Schemas) read(ctx context.Context, db, table string) (*cdc.TableDef, error) {
	giveUp := time.Now().Add(s.Patience)
	wait := 100 * time.Millisecond
	for {
		qctx, cancel := context.WithTimeout(ctx, s.Timeout)
		def, err := s.cat.Table(qctx, db, table)
		cancel()
		if errors.Is(err, ErrNoTable) {
			return nil, nil
		}
		if err == nil || ctx.Err() != nil || time.Now().Add(wait).After(giveUp) {
			return def, err
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-s.stop:
			t.Stop()
			return nil, err
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// Forget implements cdc.Schemas.
func (s *Schemas) Forget(db, table string) {
	s.mu.Lock()
	delete(s.tables, [2]string{db, table})
	s.mu.Unlock()
}
