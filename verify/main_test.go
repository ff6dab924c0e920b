package verify

import (
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	goredis "github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/internal/mongotest"
	mongoproj "github.com/rowsync/rowsync/projector/mongo"
	redisproj "github.com/rowsync/rowsync/projector/redis"
	"github.com/rowsync/rowsync/refetch"
)

// The tests run against the machine's services: MariaDB on 3306 (binlog
// off is fine: verify only reads), Redis DB 0 (every test's keys start
// with its own schema name, deleted at the end; nothing is flushed) and a
// MongoDB-compatible server (internal/mongotest; every test has its own
// database).
const rootDSN = "root@tcp(127.0.0.1:3306)/"

var (
	redisAddr  = cmp.Or(os.Getenv("ROWSYNC_REDIS_TEST_ADDR"), "127.0.0.1:6379")
	mongoURI   string
	mongoCl    *mongo.Client
	ferret     bool // FerretDB: no Decimal128, small bulks
	ferretOnce bool
)

func TestMain(m *testing.M) {
	code := m.Run()
	if mongoCl != nil {
		_ = mongoCl.Disconnect(context.Background())
	}
	os.Exit(code)
}

// mongoClient connects to the test server on first use (only the Mongo
// tests need it).
func mongoClient(t testing.TB) *mongo.Client {
	t.Helper()
	if mongoCl != nil {
		return mongoCl
	}
	if ferretOnce {
		t.Fatal("mongo server unavailable (see the first failure)")
	}
	ferretOnce = true
	uri, err := mongotest.URI()
	if err != nil {
		t.Fatal(err)
	}
	mongoURI = uri
	c, err := mongo.Connect(options.Client().ApplyURI(mongoURI).SetTimeout(2 * time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.Ping(ctx, nil); err != nil {
		t.Fatalf("mongo ping %s: %v", mongoURI, err)
	}
	ferret = mongotest.Ferret(ctx, c)
	mongoCl = c
	return c
}

// env is one test's schema, clients and projectors.
type env struct {
	t      testing.TB
	schema string
	db     *sql.DB
	rf     *refetch.Refetcher
	rdb    *goredis.Client
	redis  *redisproj.Projector
	mongo  *mongoproj.Projector
}

// newEnv creates schema rs_verify_<random> with stmts ($S is the schema)
// and a redis_hash rule (default key) for every table, plus a mongo rule
// into a database of the same name when withMongo.
func newEnv(t testing.TB, withMongo bool, stmts ...string) *env {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	e := &env{t: t, schema: "rs_verify_" + hex.EncodeToString(b)}
	db, err := sql.Open("mysql", rootDSN+"?multiStatements=true")
	if err != nil {
		t.Fatal(err)
	}
	e.db = db
	e.exec("CREATE DATABASE " + e.schema)
	t.Cleanup(func() {
		_, _ = db.Exec("DROP DATABASE IF EXISTS " + e.schema)
		db.Close()
	})
	for _, s := range stmts {
		e.exec(strings.ReplaceAll(s, "$S", e.schema))
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	e.rf, err = refetch.New(refetch.Config{DSN: rootDSN, Timeout: time.Minute}, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.rf.Close() })
	e.rdb = goredis.NewClient(&goredis.Options{Addr: redisAddr, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second})
	t.Cleanup(func() {
		ctx := context.Background()
		iter := e.rdb.Scan(ctx, 0, e.schema+"*", 1000).Iterator()
		for iter.Next(ctx) {
			e.rdb.Del(ctx, iter.Val())
		}
		e.rdb.Close()
	})
	match, err := cdc.CompileMatch(e.schema + `\..*`)
	if err != nil {
		t.Fatal(err)
	}
	e.redis, err = redisproj.New(e.rdb, []cdc.TableRule[redisproj.TableConfig]{{Match: match}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.redis.Close(context.Background()) }) // its own connections
	if withMongo {
		c := mongoClient(t)
		cfg := mongoproj.Config{URI: mongoURI}
		if ferret {
			cfg.Decimal, cfg.BulkSize = mongoproj.DecimalString, 30
		}
		e.mongo, err = mongoproj.New(context.Background(), c, cfg,
			[]cdc.TableRule[mongoproj.TableConfig]{{Match: match}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_ = c.Database(e.schema).Drop(ctx)
		})
	}
	return e
}

func (e *env) exec(q string, args ...any) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := e.db.ExecContext(ctx, q, args...); err != nil {
		e.t.Fatalf("%.200s: %v", q, err)
	}
}

// project writes every row of table into the sinks as the pipeline does
// (Insert events of the rows as refetch types them).
func (e *env) project(table string) {
	e.t.Helper()
	ctx := context.Background()
	cur, err := e.rf.Scan(ctx, e.schema, table, 500)
	if err != nil {
		e.t.Fatal(err)
	}
	defer cur.Close()
	for {
		rows, bad, err := cur.Next(ctx)
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil || len(bad) > 0 {
			e.t.Fatal(err, bad)
		}
		evs := make([]cdc.Event, len(rows))
		for i, r := range rows {
			evs[i] = cdc.Event{DB: e.schema, Table: table, Op: cdc.Insert, PK: cur.PK(), After: r, Columns: cur.Columns()}
		}
		e.apply(evs)
	}
}

// apply applies events to every sink of the env.
func (e *env) apply(evs []cdc.Event) {
	e.t.Helper()
	ctx := context.Background()
	if err := e.redis.Apply(ctx, evs); err != nil {
		e.t.Fatal(err)
	}
	if e.mongo != nil {
		if err := e.mongo.Apply(ctx, evs); err != nil {
			e.t.Fatal(err)
		}
	}
}

// result is one comparison's stats and mismatches.
type result struct {
	Stats
	list []Mismatch
}

func (r result) kinds() map[string][]string {
	out := map[string][]string{}
	for _, m := range r.list {
		out[m.Kind] = append(out[m.Kind], strings.Join(m.PK, ","))
	}
	return out
}

func (e *env) verifyRedis(table string, chunk int) result {
	e.t.Helper()
	im, ok := e.redis.Image(e.schema, table)
	if !ok {
		e.t.Fatalf("no redis rule for %s", table)
	}
	return e.verify(func(opt Options) (Stats, error) {
		return Redis(context.Background(), e.rf, e.rdb, im, e.schema, table, opt)
	}, chunk)
}

func (e *env) verifyMongo(table string, chunk int) result {
	e.t.Helper()
	im, ok := e.mongo.Image(e.schema, table)
	if !ok {
		e.t.Fatalf("no mongo rule for %s", table)
	}
	return e.verify(func(opt Options) (Stats, error) {
		return Mongo(context.Background(), e.rf, im, e.schema, table, opt)
	}, chunk)
}

// verify runs one comparison, collecting its mismatches.
func (e *env) verify(run func(Options) (Stats, error), chunk int) result {
	e.t.Helper()
	var r result
	st, err := run(Options{Chunk: chunk, Report: func(m Mismatch) { r.list = append(r.list, m) }})
	if err != nil {
		e.t.Fatal(err)
	}
	r.Stats = st
	return r
}

func (e *env) coll(table string) *mongo.Collection {
	return mongoCl.Database(e.schema).Collection(table)
}

func (e *env) key(table string, pk ...any) string {
	parts := make([]string, len(pk))
	for i, v := range pk {
		parts[i] = fmt.Sprint(v)
	}
	return e.schema + "_" + table + "_" + strings.Join(parts, ":")
}
