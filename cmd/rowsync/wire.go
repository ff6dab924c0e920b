package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	goredis "github.com/redis/go-redis/v9"
	"gopkg.in/yaml.v3"

	"github.com/rowsync/rowsync/backfill"
	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/checkpoint"
	"github.com/rowsync/rowsync/config"
	"github.com/rowsync/rowsync/internal/redisconn"
	"github.com/rowsync/rowsync/invalidator"
	"github.com/rowsync/rowsync/mysqlmeta"
	"github.com/rowsync/rowsync/pipeline"
	redisproj "github.com/rowsync/rowsync/projector/redis"
	"github.com/rowsync/rowsync/refetch"
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
	// ddl reports the schema changes every source meets
	ddl    *pipeline.DDLReport
	closes []func()
}

func (d *deps) close() {
	for i := len(d.closes) - 1; i >= 0; i-- {
		d.closes[i]()
	}
}

func newDeps(cfg *config.Config, log *slog.Logger) (*deps, error) {
	d := &deps{cfg: cfg, router: cfg.Router(), log: log}
	d.ddl = &pipeline.DDLReport{Match: d.routed, MatchDB: d.router.MayRouteDB, Logger: log.With("component", "ddl")}
	open := func(key string) (goredis.UniversalClient, error) {
		rc, ok := config.Block[redisconn.Config](cfg, key)
		if !ok {
			return nil, nil
		}
		c, err := redisconn.New(rc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		d.closes = append(d.closes, func() { c.Close() })
		return c, nil
	}
	var err error
	if d.redis, err = open("redis"); err != nil {
		return nil, err
	}
	if d.cache, err = open("invalidate_redis"); err != nil {
		d.close()
		return nil, err
	}
	if d.cache == nil {
		d.cache = d.redis
	}
	if dsn := schemaDSN(cfg); dsn != "" {
		sc, err := mysqlmeta.OpenSchemas(dsn)
		if err != nil {
			d.close()
			return nil, fmt.Errorf("schema: %w", err)
		}
		sc.Log = log.With("component", "schema")
		d.schemas = sc
		d.closes = append(d.closes, func() { sc.Close() })
	}
	return d, nil
}

// routed reports whether a tables[] rule matches db.table.
func (d *deps) routed(db, table string) bool {
	i, _ := d.router.Entry(db, table)
	return i >= 0
}

// schemaDSN is the DSN of the schema source typeless formats use:
// schema.dsn, else mysql.dsn; "" for none, and always for a binlog source
// (which types values itself).
func schemaDSN(cfg *config.Config) string {
	if cfg.Source == binlog.Name {
		return ""
	}
	if sc, ok := config.Block[mysqlmeta.SchemaConfig](cfg, "schema"); ok {
		return sc.DSN
	}
	if rc, ok := config.Block[refetch.Config](cfg, "mysql"); ok {
		return rc.DSN
	}
	return ""
}

// newSource builds the configured source.
func newSource(ctx context.Context, d *deps) (cdc.Source, error) {
	return sources[d.cfg.Source].build(ctx, d)
}

func checkpointStore(d *deps) (checkpoint.Store, error) {
	cc, _ := config.Block[checkpoint.Config](d.cfg, "checkpoint")
	return checkpoint.Open(cc, d.cfg.Name, d.redis)
}

// backfillStore opens the pipeline's backfill store beside its checkpoint
// (the checkpoint: block's store, whatever the source).
func backfillStore(d *deps) (backfill.Store, error) {
	cc, _ := config.Block[checkpoint.Config](d.cfg, "checkpoint")
	if cc.UsesRedis() && d.redis == nil {
		return nil, errors.New("checkpoint: backfills are kept beside the checkpoint, in Redis by default: add a redis: block or set checkpoint.file")
	}
	return backfill.Open(cc, d.cfg.Name, d.redis)
}

func newBinlogSource(ctx context.Context, d *deps) (cdc.Source, error) {
	store, err := checkpointStore(d)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	bc, _ := config.Block[binlog.Config](d.cfg, "source.binlog")
	src, err := binlog.New(ctx, wiredBinlog(d, bc), store, d.log)
	if err != nil {
		return nil, fmt.Errorf("source.binlog: %w", err)
	}
	return src, nil
}

// wiredBinlog is the binlog block with what the wiring adds: row images
// lacking columns are enough for tables read again by key.
func wiredBinlog(d *deps, bc binlog.Config) binlog.Config {
	bc.Refetched = d.router.Refetch
	bc.OnDDL = d.ddl.OnDDL
	bc.AllRefetched = len(d.cfg.Tables) > 0
	for _, t := range d.cfg.Tables {
		bc.AllRefetched = bc.AllRefetched && t.Refetch
	}
	return bc
}

// sourceBlock is the configured source's block as the wiring hands it to
// the source.
func (d *deps) sourceBlock() any {
	v, _ := config.Block[any](d.cfg, "source."+d.cfg.Source)
	if bc, ok := v.(binlog.Config); ok {
		return wiredBinlog(d, bc)
	}
	return v
}

// block returns the block b as its component runs with it (the zero value
// when the file leaves out a block used with its defaults), and false
// when the run does not use it.
func (d *deps) block(b blockKind) (any, bool) {
	if b.source != "" && b.source != d.cfg.Source {
		return nil, false
	}
	if v, ok := config.Block[any](d.cfg, b.key); ok || !b.always {
		return v, ok
	}
	v, err := b.codec(&yaml.Node{Kind: yaml.MappingNode}) // the defaults
	return v, err == nil
}

func decoderFor(d *deps, format string, limits decode.Limits, settings decode.Settings) (decode.Decoder, error) {
	loc, err := settings.Location()
	if err != nil {
		return nil, err
	}
	return all.New(format, decode.Options{KeyColumns: d.router.KeyColumns, Limits: limits, TimeZone: loc,
		Debezium: settings.Debezium, Schemas: d.schemas, OnDDL: d.ddl.OnDDL})
}

func newKafkaSource(_ context.Context, d *deps) (cdc.Source, error) {
	kc, _ := config.Block[kafka.Config](d.cfg, "source.kafka")
	dec, err := decoderFor(d, kc.Format, kc.Limits, kc.Settings)
	if err != nil {
		return nil, fmt.Errorf("source.kafka.format: %w", err)
	}
	src, err := kafka.New(kc, dec, d.log.With("source", kafka.Name))
	if err != nil {
		return nil, fmt.Errorf("source.kafka: %w", err)
	}
	return src, nil
}

func newRabbitSource(_ context.Context, d *deps) (cdc.Source, error) {
	rc, _ := config.Block[rabbitmq.Config](d.cfg, "source.rabbitmq")
	dec, err := decoderFor(d, rc.Format, rc.Limits, rc.Settings)
	if err != nil {
		return nil, fmt.Errorf("source.rabbitmq.format: %w", err)
	}
	src, err := rabbitmq.New(rc, dec, d.log.With("source", rabbitmq.Name))
	if err != nil {
		return nil, fmt.Errorf("source.rabbitmq: %w", err)
	}
	return src, nil
}

func newRedisSink(_ context.Context, d *deps, cfg redisproj.Config, rules []cdc.TableRule[redisproj.TableConfig]) (cdc.Sink, error) {
	return redisproj.NewWithConfig(cfg, d.redis, rules, d.log)
}

func newInvalidator(_ context.Context, d *deps, cfg invalidator.Config, rules []cdc.TableRule[invalidator.TableConfig]) (cdc.Sink, error) {
	return invalidator.New(d.cache, cfg, rules, d.log)
}

// buildRoutes builds every sink some table uses, except those skip names,
// each routed by the table router.
func buildRoutes(ctx context.Context, d *deps, skip func(name string) bool) ([]pipeline.Route, error) {
	var routes []pipeline.Route
	for _, s := range sinks {
		if skip != nil && skip(s.name) {
			continue
		}
		sink, err := s.build(ctx, d)
		if err != nil {
			closeRoutes(routes, d.log)
			return nil, fmt.Errorf("%s: %w", s.key, err)
		}
		if sink != nil {
			key := s.key
			routes = append(routes, pipeline.Route{Name: s.name, Sink: sink,
				Wants: func(db, table string) bool { return d.router.Routes(db, table, key) }})
		}
	}
	return routes, nil
}

func closeRoutes(routes []pipeline.Route, log *slog.Logger) {
	for _, r := range routes {
		if err := r.Sink.Close(context.Background()); err != nil {
			log.Warn("close sink", "sink", r.Name, "err", err)
		}
	}
}

// ruleKey returns the table-rule key of the sink named name.
func ruleKey(name string) string {
	for _, s := range sinks {
		if s.name == name {
			return s.key
		}
	}
	return name
}
