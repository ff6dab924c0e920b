package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/checkpoint"
	"github.com/rowsync/rowsync/config"
	"github.com/rowsync/rowsync/invalidator"
	"github.com/rowsync/rowsync/mysqlmeta"
	"github.com/rowsync/rowsync/pipeline"
	redisproj "github.com/rowsync/rowsync/projector/redis"
	"github.com/rowsync/rowsync/source/binlog"
	"github.com/rowsync/rowsync/source/decode"
	"github.com/rowsync/rowsync/source/decode/all"
	"github.com/rowsync/rowsync/source/kafka"
	"github.com/rowsync/rowsync/source/rabbitmq"
)

// deps are the shared clients a run builds once.
type deps struct {
	cfg    *config.Config
	router *config.Router
	log    *slog.Logger
	redis  goredis.UniversalClient // nil without a redis: block
	cache  goredis.UniversalClient // invalidate_redis:, else redis
	// schemas types typeless formats (schema:, else mysql:); nil if neither
	schemas cdc.Schemas
	closes  []func()
	// runners are goroutines a sink needs beside Apply (delayed deletes).
	runners []func(ctx context.Context) error
}

func (d *deps) close() {
	for i := len(d.closes) - 1; i >= 0; i-- {
		d.closes[i]()
	}
}

func newDeps(cfg *config.Config, log *slog.Logger) (*deps, error) {
	d := &deps{cfg: cfg, router: cfg.Router(), log: log}
	if cfg.Redis != nil {
		c, err := redisClient(cfg.Redis)
		if err != nil {
			return nil, fmt.Errorf("redis: %w", err)
		}
		d.redis = c
		d.closes = append(d.closes, func() { c.Close() })
	}
	d.cache = d.redis
	if cfg.InvalidateRedis != nil {
		c, err := redisClient(cfg.InvalidateRedis)
		if err != nil {
			d.close()
			return nil, fmt.Errorf("invalidate_redis: %w", err)
		}
		d.cache = c
		d.closes = append(d.closes, func() { c.Close() })
	}
	if dsn := cfg.SchemaDSN(); dsn != "" {
		sc, err := mysqlmeta.OpenSchemas(dsn)
		if err != nil {
			d.close()
			return nil, fmt.Errorf("schema: %w", err)
		}
		d.schemas = sc
		d.closes = append(d.closes, func() { sc.Close() })
	}
	return d, nil
}

func redisClient(r *config.Redis) (goredis.UniversalClient, error) {
	pw := r.Password
	if r.PasswordFile != "" {
		b, err := os.ReadFile(r.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("password_file: %w", err)
		}
		pw = strings.TrimSpace(string(b))
	}
	addrs := r.Addrs
	if len(addrs) == 0 {
		addr := r.Addr
		if addr == "" {
			addr = "127.0.0.1:6379"
		}
		addrs = []string{addr}
	}
	opts := &goredis.UniversalOptions{Addrs: addrs, DB: r.DB, Username: r.Username, Password: pw, PoolSize: r.PoolSize}
	if r.TLS {
		opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if len(addrs) > 1 {
		return goredis.NewClusterClient(opts.Cluster()), nil
	}
	return goredis.NewClient(opts.Simple()), nil
}

// sourceFactories builds the configured source; one line per source kind.
var sourceFactories = map[string]func(ctx context.Context, d *deps) (cdc.Source, error){
	"binlog":   newBinlogSource,
	"kafka":    newKafkaSource,
	"rabbitmq": newRabbitSource,
}

func sourceKind(c *config.Config) string {
	switch {
	case c.Source.Binlog != nil:
		return "binlog"
	case c.Source.Kafka != nil:
		return "kafka"
	case c.Source.RabbitMQ != nil:
		return "rabbitmq"
	}
	return ""
}

func checkpointStore(d *deps) (checkpoint.Store, error) {
	c := d.cfg.Checkpoint
	if c.File != "" {
		return checkpoint.Open(checkpoint.Config{Type: "file", Path: c.File}, d.cfg.Name, nil)
	}
	cc := checkpoint.Config{Type: "redis"}
	if c.Redis != nil {
		cc.Prefix = c.Redis.Prefix
	}
	return checkpoint.Open(cc, d.cfg.Name, d.redis)
}

func newBinlogSource(ctx context.Context, d *deps) (cdc.Source, error) {
	store, err := checkpointStore(d)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	bc := *d.cfg.Source.Binlog
	// row images lacking columns are enough for tables read again by key
	bc.Refetched = d.router.Refetch
	src, err := binlog.New(ctx, bc, store, d.log)
	if err != nil {
		return nil, fmt.Errorf("source.binlog: %w", err)
	}
	return src, nil
}

func decoderFor(d *deps, format string, limits decode.Limits, settings decode.Settings) (decode.Decoder, error) {
	loc, err := settings.Location()
	if err != nil {
		return nil, err
	}
	return all.New(format, decode.Options{KeyColumns: d.router.KeyColumns, Limits: limits, TimeZone: loc,
		Debezium: settings.Debezium, Schemas: d.schemas})
}

func newKafkaSource(_ context.Context, d *deps) (cdc.Source, error) {
	dec, err := decoderFor(d, d.cfg.Source.Kafka.Format, d.cfg.Source.Kafka.Limits, d.cfg.Source.Kafka.Settings)
	if err != nil {
		return nil, fmt.Errorf("source.kafka.format: %w", err)
	}
	src, err := kafka.New(*d.cfg.Source.Kafka, dec, d.log.With("source", "kafka"))
	if err != nil {
		return nil, fmt.Errorf("source.kafka: %w", err)
	}
	return src, nil
}

func newRabbitSource(_ context.Context, d *deps) (cdc.Source, error) {
	dec, err := decoderFor(d, d.cfg.Source.RabbitMQ.Format, d.cfg.Source.RabbitMQ.Limits, d.cfg.Source.RabbitMQ.Settings)
	if err != nil {
		return nil, fmt.Errorf("source.rabbitmq.format: %w", err)
	}
	src, err := rabbitmq.New(*d.cfg.Source.RabbitMQ, dec, d.log.With("source", "rabbitmq"))
	if err != nil {
		return nil, fmt.Errorf("source.rabbitmq: %w", err)
	}
	return src, nil
}

// sinkFactories builds each sink that at least one table uses; one line
// per sink kind. A factory returns nil when no table uses it. has says
// whether a tables[] entry names the sink; the router sends a table's
// changes to the sink only when its deciding entry does.
var sinkFactories = []struct {
	name  string
	has   func(config.Table) bool
	build func(ctx context.Context, d *deps) (cdc.Sink, error)
}{
	{"redis", func(t config.Table) bool { return t.RedisHash != nil }, newRedisSink},
	{"mongo", func(t config.Table) bool { return t.Mongo != nil }, newMongoSink},
	{"invalidate", func(t config.Table) bool { return t.Invalidate != nil }, newInvalidator},
}

func newRedisSink(_ context.Context, d *deps) (cdc.Sink, error) {
	rs := config.Rules(d.router, func(t config.Table) *redisproj.TableConfig { return t.RedisHash })
	if len(rs) == 0 {
		return nil, nil
	}
	return redisproj.NewWithConfig(d.cfg.RedisHash, d.redis, rs, d.log.With("sink", "redis"))
}

func newInvalidator(_ context.Context, d *deps) (cdc.Sink, error) {
	rs := config.Rules(d.router, func(t config.Table) *invalidator.TableConfig { return t.Invalidate })
	if len(rs) == 0 {
		return nil, nil
	}
	inv, err := invalidator.New(d.cache, d.cfg.Invalidate, rs, d.log.With("sink", "invalidate"))
	if err != nil {
		return nil, err
	}
	d.runners = append(d.runners, inv.Run)
	return inv, nil
}

// buildRoutes builds the sinks for which skip returns false, each routed
// by the table router.
func buildRoutes(ctx context.Context, d *deps, skip func(name string) bool) ([]pipeline.Route, error) {
	var routes []pipeline.Route
	for _, f := range sinkFactories {
		if skip != nil && skip(f.name) {
			continue
		}
		s, err := f.build(ctx, d)
		if err != nil {
			for _, r := range routes {
				r.Sink.Close(ctx)
			}
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
		if s != nil {
			has := f.has
			routes = append(routes, pipeline.Route{Name: f.name, Sink: s,
				Wants: func(db, table string) bool { return d.router.Routes(db, table, has) }})
		}
	}
	return routes, nil
}
