package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/rowsync/rowsync/backfill"
	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/checkpoint"
	"github.com/rowsync/rowsync/config"
	"github.com/rowsync/rowsync/deadletter"
	"github.com/rowsync/rowsync/internal/redisconn"
	"github.com/rowsync/rowsync/invalidator"
	"github.com/rowsync/rowsync/lease"
	"github.com/rowsync/rowsync/mysqlmeta"
	mongoproj "github.com/rowsync/rowsync/projector/mongo"
	redisproj "github.com/rowsync/rowsync/projector/redis"
	"github.com/rowsync/rowsync/refetch"
	"github.com/rowsync/rowsync/source/binlog"
	"github.com/rowsync/rowsync/source/decode/all"
	"github.com/rowsync/rowsync/source/kafka"
	"github.com/rowsync/rowsync/source/rabbitmq"
)

// sources lists the sources, one line each: the key under source:, how
// its block decodes, and how the source is built.
var sources = map[string]sourceKind{
	binlog.Name:   {config.Of[binlog.Config](), newBinlogSource},
	kafka.Name:    {withFormat(func(c *kafka.Config) string { return c.Format }), newKafkaSource},
	rabbitmq.Name: {withFormat(func(c *rabbitmq.Config) string { return c.Format }), newRabbitSource},
}

// sinks lists the sinks, one line each, in the order a batch is applied:
// name, table-rule key, builder and the top-level blocks it needs (one of).
var sinks = []sinkKind{
	sinkOf(redisproj.Name, redisproj.RuleKey, newRedisSink, "redis"),
	sinkOf(mongoproj.Name, mongoproj.RuleKey, opened(mongoproj.Open), mongoproj.RuleKey),
	sinkOf(invalidator.Name, invalidator.RuleKey, newInvalidator, "invalidate_redis", "redis"),
}

// blocks lists the other components' top-level blocks, in the order
// `rowsync check` tries them.
var blocks = []blockKind{
	{key: "redis", codec: config.Of[redisconn.Config]()},
	{key: "invalidate_redis", codec: config.Of[redisconn.Config]()},
	{key: "checkpoint", codec: config.Of[checkpoint.Config](), always: true, source: binlog.Name},
	{key: "lease", codec: config.Of[lease.Config]()},
	{key: "deadletter", codec: config.Of[deadletter.Config](), always: true},
	{key: "mysql", codec: config.Of[refetch.Config]()},
	{key: "schema", codec: config.Of[mysqlmeta.SchemaConfig]()},
	{key: "backfill", codec: config.Of[backfill.Config]()},
}

// blockKind is one line of blocks.
type blockKind struct {
	key   string
	codec config.Codec
	// always: the component runs with its defaults when the file leaves
	// the block out
	always bool
	// source, when set, is the only source kind whose runs use the block
	source string
}

// The sinks whose table rules keep only some columns tell the dead letter
// which to hide.
var (
	_ config.ColumnSelector = redisproj.TableConfig{}
	_ config.ColumnSelector = mongoproj.TableConfig{}
)

// registry is what config knows of the components.
func registry() config.Registry {
	r := config.Registry{Sources: map[string]config.Codec{}, Sinks: map[string]config.Sink{}, Blocks: map[string]config.Codec{}, Check: crossCheck}
	for _, b := range blocks {
		r.Blocks[b.key] = b.codec
	}
	for kind, s := range sources {
		r.Sources[kind] = s.codec
	}
	for _, s := range sinks {
		r.Sinks[s.key] = s.spec
	}
	return r
}

// crossCheck checks blocks against each other.
func crossCheck(c *config.Config) error {
	var errs []error
	if c.Has("lease") {
		if c.Source != binlog.Name {
			errs = append(errs, config.Problem("lease", "only for a binlog source (Kafka groups and RabbitMQ single-active-consumer queues coordinate consumers themselves)"))
		}
		if !c.Has("redis") {
			errs = append(errs, config.Problem("lease", "needs the top-level redis: block"))
		}
	}
	if cp, _ := config.Block[checkpoint.Config](c, "checkpoint"); c.Source == binlog.Name && cp.UsesRedis() && !c.Has("redis") {
		errs = append(errs, config.Problem("checkpoint", "the default checkpoint store is Redis: add a redis: block or set checkpoint.file"))
	}
	if c.Has("schema") && c.Source == binlog.Name {
		errs = append(errs, config.Problem("schema", "a binlog source reads column types itself: remove schema:"))
	}
	for i, t := range c.Tables {
		if t.Refetch && !c.Has("mysql") {
			errs = append(errs, config.Problem(fmt.Sprintf("tables[%d].refetch", i), "needs the top-level mysql: block"))
		}
	}
	if rc, ok := config.Block[rabbitmq.Config](c, "source."+rabbitmq.Name); ok && rc.OrderedConsumers() {
		errs = append(errs, orderedConsumers(c, rc)...)
	}
	return errors.Join(errs...)
}

// orderedConsumers checks that several consumers of one queue cannot
// apply a row's changes out of order: RabbitMQ keeps a queue's order for
// one consumer only, so every change needs a version (the format's binlog
// position) and every sink that writes rows a version guard. The
// invalidator only deletes cache keys, in any order to the same effect.
func orderedConsumers(c *config.Config, rc rabbitmq.Config) []error {
	key := "source." + rabbitmq.Name + ".consumers"
	why := fmt.Sprintf("%d consumers of one queue can apply two changes of a row in the opposite order", rc.Consumers)
	var errs []error
	if !all.Versioned(rc.Format) {
		errs = append(errs, config.Problem(key, fmt.Sprintf("%s, and format %s carries no binlog position for a version guard to order them: set consumers: 1, or unordered: true to accept that", why, rc.Format)))
	}
	for i, t := range c.Tables {
		for _, rule := range []struct {
			key     string
			guarded func(any) bool
		}{
			{redisproj.RuleKey, func(v any) bool { r, ok := v.(redisproj.TableConfig); return ok && r.VersionField != "" }},
			{mongoproj.RuleKey, func(v any) bool { r, ok := v.(mongoproj.TableConfig); return ok && r.VersionField != "" }},
		} {
			if v, ok := t.Sinks[rule.key]; ok && !rule.guarded(v) {
				errs = append(errs, config.Problem(key, fmt.Sprintf("%s: tables[%d].%s needs version_field so an older change cannot win, or set consumers: 1, or unordered: true to accept that", why, i, rule.key)))
			}
		}
	}
	return errs
}

// sourceKind is one line of sources.
type sourceKind struct {
	codec config.Codec
	build func(ctx context.Context, d *deps) (cdc.Source, error)
}

// withFormat is the codec of a message source's block: its own checks and
// a format the decoders know.
func withFormat[T any, P interface {
	*T
	Validate() error
}](format func(P) string) config.Codec {
	return func(node *yaml.Node) (any, error) {
		var v T
		if err := config.Decode(node, &v); err != nil {
			return nil, err
		}
		errs := []error{P(&v).Validate()}
		switch f := format(&v); {
		case f == "":
			errs = append(errs, fmt.Errorf("format: required (one of %s)", strings.Join(all.Names(), ", ")))
		default:
			if _, ok := all.Formats[f]; !ok {
				errs = append(errs, fmt.Errorf("format: unknown format %q (want one of %s)", f, strings.Join(all.Names(), ", ")))
			}
		}
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
		return v, nil
	}
}

// sinkKind is one line of sinks.
type sinkKind struct {
	name, key string
	spec      config.Sink
	// build returns nil when no table uses the sink.
	build func(ctx context.Context, d *deps) (cdc.Sink, error)
}

// sinkOf describes a sink whose sink-wide block decodes to C and whose
// table blocks decode to T, built by build from both.
func sinkOf[C, T any, PC interface {
	*C
	Validate() error
}, PT interface {
	*T
	Validate() error
}](name, key string, build func(ctx context.Context, d *deps, cfg C, rules []cdc.TableRule[T]) (cdc.Sink, error), needs ...string) sinkKind {
	return sinkKind{
		name: name, key: key,
		spec: config.Sink{Config: config.Of[C, PC](), Rule: config.Of[T, PT](), Needs: needs},
		build: func(ctx context.Context, d *deps) (cdc.Sink, error) {
			if !d.router.Uses(key) {
				return nil, nil
			}
			cfg, _ := config.Block[C](d.cfg, key)
			sd := *d // the sink's logs name it
			sd.log = d.log.With("sink", name)
			return build(ctx, &sd, cfg, config.Rules[T](d.router, key))
		},
	}
}

// opened adapts a sink whose package opens its own connection from its
// config block.
func opened[C, T any, S cdc.Sink](open func(ctx context.Context, cfg C, rules []cdc.TableRule[T], log *slog.Logger) (S, error)) func(context.Context, *deps, C, []cdc.TableRule[T]) (cdc.Sink, error) {
	return func(ctx context.Context, d *deps, cfg C, rules []cdc.TableRule[T]) (cdc.Sink, error) {
		s, err := open(ctx, cfg, rules, d.log)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
}
