package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	goredis "github.com/redis/go-redis/v9"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/rowsync/rowsync/config"
	"github.com/rowsync/rowsync/mysqlmeta"
	"github.com/rowsync/rowsync/source/decode"
	"github.com/rowsync/rowsync/source/decode/all"
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
	for _, c := range checks(cfg) {
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

func checks(cfg *config.Config) []check {
	var out []check
	if b := cfg.Source.Binlog; b != nil {
		out = append(out, check{"source.binlog " + b.Addr, func(ctx context.Context) error {
			return checkBinlogServer(ctx, cfg)
		}})
	}
	if k := cfg.Source.Kafka; k != nil {
		out = append(out, check{"source.kafka " + strings.Join(k.Brokers, ","), func(ctx context.Context) error {
			var errs []string
			for _, b := range k.Brokers {
				conn, err := kafkago.DialContext(ctx, "tcp", b)
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
		}})
	}
	if r := cfg.Source.RabbitMQ; r != nil {
		out = append(out, check{"source.rabbitmq queue " + r.Queue, func(ctx context.Context) error {
			dec, err := all.New(r.Format, decode.Options{})
			if err != nil {
				return err
			}
			src, err := rabbitmq.New(*r, dec, nil)
			if err != nil {
				return err
			}
			defer src.Close(ctx)
			return src.Ping(ctx)
		}})
	}
	if cfg.Redis != nil {
		out = append(out, check{"redis " + redisAddr(cfg.Redis), func(ctx context.Context) error { return pingRedis(ctx, cfg.Redis) }})
	}
	if cfg.InvalidateRedis != nil {
		out = append(out, check{"invalidate_redis " + redisAddr(cfg.InvalidateRedis), func(ctx context.Context) error {
			return pingRedis(ctx, cfg.InvalidateRedis)
		}})
	}
	if cfg.Source.Binlog != nil && cfg.Checkpoint.File != "" {
		out = append(out, check{"checkpoint.file " + cfg.Checkpoint.File, func(context.Context) error {
			return writableDir(filepath.Dir(cfg.Checkpoint.File))
		}})
	}
	if k := cfg.DeadLetter.Kafka; k != nil {
		out = append(out, check{"deadletter.kafka " + k.Topic, func(ctx context.Context) error {
			conn, err := kafkago.DialContext(ctx, "tcp", k.Brokers[0])
			if err != nil {
				return err
			}
			defer conn.Close()
			_, err = conn.Brokers()
			return err
		}})
	} else {
		dl := cfg.DeadLetter.File
		if dl == "" {
			dl = "deadletter.jsonl"
		}
		out = append(out, check{"deadletter.file " + dl, func(context.Context) error { return writableDir(filepath.Dir(dl)) }})
	}
	if cfg.MySQL != nil {
		out = append(out, check{"mysql (refetch)", func(ctx context.Context) error {
			db, err := sql.Open("mysql", cfg.MySQL.DSN)
			if err != nil {
				return err
			}
			defer db.Close()
			return db.PingContext(ctx)
		}})
	}
	if cfg.Schema != nil {
		out = append(out, check{"schema (column types of typeless formats)", func(ctx context.Context) error {
			db, err := sql.Open("mysql", cfg.Schema.DSN)
			if err != nil {
				return err
			}
			defer db.Close()
			_, err = mysqlmeta.NewCatalog(db).Tables(ctx, nil)
			return err
		}})
	}
	if cfg.Source.Binlog != nil || cfg.MySQL != nil {
		out = append(out, check{"schema of mapped tables", func(ctx context.Context) error { return checkSchemasOnce(ctx, cfg) }})
	}
	out = append(out, mongoChecks(cfg)...)
	return out
}

func redisAddr(r *config.Redis) string {
	if len(r.Addrs) > 0 {
		return strings.Join(r.Addrs, ",")
	}
	if r.Addr == "" {
		return "127.0.0.1:6379"
	}
	return r.Addr
}

func pingRedis(ctx context.Context, r *config.Redis) error {
	c, err := redisClient(r)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Ping(ctx).Err()
}

var _ goredis.UniversalClient = (*goredis.Client)(nil)

// checkBinlogServer connects (with the source's TLS) and checks the
// settings a row-based binlog tap needs; row images may lack columns when
// every mapped table is read again by key.
func checkBinlogServer(ctx context.Context, cfg *config.Config) error {
	b := cfg.Source.Binlog
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
