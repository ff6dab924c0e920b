package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/checkpoint"
	"github.com/rowsync/rowsync/config"
	"github.com/rowsync/rowsync/deadletter"
	"github.com/rowsync/rowsync/internal/kafkaauth"
	"github.com/rowsync/rowsync/internal/redisconn"
	"github.com/rowsync/rowsync/internal/tlsconf"
	"github.com/rowsync/rowsync/mysqlmeta"
	"github.com/rowsync/rowsync/pipeline"
	"github.com/rowsync/rowsync/refetch"
	"github.com/rowsync/rowsync/source/binlog"
	"github.com/rowsync/rowsync/source/decode"
	"github.com/rowsync/rowsync/source/decode/all"
	"github.com/rowsync/rowsync/source/kafka"
	"github.com/rowsync/rowsync/source/rabbitmq"
)

// cmdCheck validates the config, then tries every configured connection
// and prints one line per component. It exits 1 if any check fails.
func cmdCheck(args []string, stdout, stderr io.Writer) int {
	cfg, _, code := loadConfig("check", args, stderr, nil)
	if cfg == nil {
		return code
	}
	fmt.Fprintln(stdout, "ok    config")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	failed := false
	scrub := scrubberFor(cfg)
	report := func(component string, err error) {
		if err != nil {
			failed = true
			fmt.Fprintf(stdout, "FAIL  %s: %v\n", scrub.String(component), scrub.Error(err))
			return
		}
		fmt.Fprintf(stdout, "ok    %s\n", component)
	}
	d, err := newDeps(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		report("clients", err)
		return exitFail
	}
	defer d.close()
	routes, err := buildRoutes(ctx, d, nil)
	if err != nil {
		report("sinks", err)
		return exitFail
	}
	defer closeRoutes(routes, d.log)
	for _, w := range plaintextWarnings(cfg) {
		fmt.Fprintf(stdout, "warn  %s\n", w)
	}
	for _, c := range checks(cfg, d, routes) {
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		report(c.name, c.run(cctx))
		ccancel()
	}
	if failed {
		return exitFail
	}
	return exitOK
}

type check struct {
	name string
	run  func(ctx context.Context) error
}

func checks(cfg *config.Config, d *deps, routes []pipeline.Route) []check {
	var out []check
	if b, ok := config.Block[binlog.Config](cfg, "source.binlog"); ok {
		out = append(out, check{"source.binlog " + b.Addr, func(ctx context.Context) error {
			return checkBinlogServer(ctx, cfg, b)
		}})
	}
	if k, ok := config.Block[kafka.Config](cfg, "source.kafka"); ok {
		out = append(out, check{"source.kafka " + strings.Join(k.Brokers, ","), func(ctx context.Context) error {
			return dialKafka(ctx, k.Brokers, k.SASL, k.TLS)
		}})
	}
	if r, ok := config.Block[rabbitmq.Config](cfg, "source.rabbitmq"); ok {
		out = append(out, check{"source.rabbitmq queue " + r.Queue, func(ctx context.Context) error {
			dec, err := all.New(r.Format, decode.Options{})
			if err != nil {
				return err
			}
			src, err := rabbitmq.New(r, dec, nil)
			if err != nil {
				return err
			}
			defer src.Close(ctx)
			return src.Ping(ctx)
		}})
	}
	for _, key := range []string{"redis", "invalidate_redis"} {
		if rc, ok := config.Block[redisconn.Config](cfg, key); ok {
			out = append(out, check{key + " " + rc.String(), func(ctx context.Context) error {
				c, err := redisconn.New(rc)
				if err != nil {
					return err
				}
				defer c.Close()
				return c.Ping(ctx).Err()
			}})
		}
	}
	if cp, _ := config.Block[checkpoint.Config](cfg, "checkpoint"); cfg.Source == binlog.Name && !cp.UsesRedis() {
		out = append(out, check{"checkpoint.file " + cp.File, func(context.Context) error {
			return writableDir(filepath.Dir(cp.File))
		}})
	}
	if dc, _ := config.Block[deadletter.Config](cfg, "deadletter"); dc.Kafka != nil {
		out = append(out, check{"deadletter.kafka " + dc.Kafka.Topic, func(ctx context.Context) error {
			return dialKafka(ctx, dc.Kafka.Brokers, dc.Kafka.SASL, dc.Kafka.TLS)
		}})
	} else {
		path := dc.File
		if path == "" {
			path = deadletter.DefaultFile
		}
		out = append(out, check{"deadletter.file " + path, func(context.Context) error { return writableDir(filepath.Dir(path)) }})
	}
	if rc, ok := config.Block[refetch.Config](cfg, "mysql"); ok {
		out = append(out, check{"mysql (refetch)", func(ctx context.Context) error {
			db, err := sql.Open("mysql", rc.DSN)
			if err != nil {
				return err
			}
			defer db.Close()
			return db.PingContext(ctx)
		}})
	}
	if sc, ok := config.Block[mysqlmeta.SchemaConfig](cfg, "schema"); ok {
		out = append(out, check{"schema (column types of typeless formats)", func(ctx context.Context) error {
			db, err := sql.Open("mysql", sc.DSN)
			if err != nil {
				return err
			}
			defer db.Close()
			_, err = mysqlmeta.NewCatalog(db).Tables(ctx, nil)
			return err
		}})
	}
	for _, r := range routes {
		if pg, ok := r.Sink.(cdc.Pinger); ok {
			out = append(out, check{"sink " + r.Name, pg.Ping})
		}
	}
	out = append(out, check{"schema of mapped tables", func(ctx context.Context) error { return checkSchemasOnce(ctx, cfg, routes) }})
	return out
}

// dialKafka asks the brokers in turn for the cluster's brokers.
// dialKafka asks the brokers for metadata with the TLS and SASL the client
// is configured with, so check tries the connection run makes.
func dialKafka(ctx context.Context, brokers []string, s kafkaauth.SASL, t tlsconf.Config) error {
	mech, err := s.Build()
	if err != nil {
		return err
	}
	tc, err := t.Client("tls.", "")
	if err != nil {
		return err
	}
	dialer := &kafkago.Dialer{ClientID: "rowsync", Timeout: 5 * time.Second, DualStack: true, TLS: tc, SASLMechanism: mech}
	var errs []string
	for _, b := range brokers {
		conn, err := dialer.DialContext(ctx, "tcp", b)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		_, err = conn.Brokers()
		conn.Close()
		if err == nil {
			return nil
		}
		errs = append(errs, err.Error())
	}
	return fmt.Errorf("no broker answered: %s", strings.Join(errs, "; "))
}

// checkBinlogServer connects (with the source's TLS) and checks the
// settings a row-based binlog tap needs; row images may lack columns when
// every mapped table is read again by key.
func checkBinlogServer(ctx context.Context, cfg *config.Config, b binlog.Config) error {
	dsn := mysqlmeta.DSN(b.Addr, b.User, b.Password)
	tc, err := b.TLSClient()
	if err != nil {
		return err
	}
	dsn.TLS = tc
	connector, err := mysql.NewConnector(dsn)
	if err != nil {
		return err
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	needs := mysqlmeta.BinlogNeeds{PartialImages: len(cfg.Tables) > 0}
	for _, t := range cfg.Tables {
		needs.PartialImages = needs.PartialImages && t.Refetch
	}
	return mysqlmeta.CheckBinlogFor(ctx, db, needs)
}

func writableDir(dir string) error {
	f, err := os.CreateTemp(dir, ".rowsync-check-*")
	if err != nil {
		return fmt.Errorf("not writable: %w", err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}
