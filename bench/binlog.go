package main

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	_ "github.com/go-sql-driver/mysql"
	goredis "github.com/redis/go-redis/v9"
)

// benchSchema is the suite's own schema on the binlog MariaDB; it is
// dropped at the end of every scenario that creates it.
const benchSchema = "rs_bench"

const itemsDDL = `CREATE TABLE rs_bench.items (
	id BIGINT PRIMARY KEY, user_id INT, sku VARCHAR(32), qty SMALLINT, price DECIMAL(12,2),
	discount DOUBLE, status VARCHAR(16), note VARCHAR(255), created_at DATETIME(3), updated_at TIMESTAMP NULL)`

func openMySQL(o *options) (*sql.DB, error) {
	db, err := sql.Open("mysql", o.mysqlDSN)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(4)
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("mariadb 127.0.0.1:3307 (bash scripts/mariadb-binlog.sh): %w", err)
	}
	return db, nil
}

// freshSchema drops and recreates rs_bench with the given tables and
// returns a cleanup that drops it.
func freshSchema(ctx context.Context, db *sql.DB, ddl ...string) (func(), error) {
	stmts := append([]string{"DROP DATABASE IF EXISTS " + benchSchema, "CREATE DATABASE " + benchSchema}, ddl...)
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return nil, fmt.Errorf("%s: %w", strings.Fields(s)[0], err)
		}
	}
	return func() { _, _ = db.Exec("DROP DATABASE IF EXISTS " + benchSchema) }, nil
}

// itemsEnv opens the binlog MariaDB with a fresh, empty rs_bench.items and
// the emptied sink DB; done closes both, drops the schema and flushes the DB.
func itemsEnv(ctx context.Context, o *options) (db *sql.DB, rc *goredis.Client, done func(), err error) {
	if db, err = openMySQL(o); err != nil {
		return nil, nil, nil, err
	}
	drop, err := freshSchema(ctx, db, itemsDDL)
	if err != nil {
		db.Close()
		return nil, nil, nil, err
	}
	rc = redisDB(sinkDB)
	done = func() {
		_ = flush(context.Background(), sinkDB)
		rc.Close()
		drop()
		db.Close()
	}
	if err := flush(ctx, sinkDB); err != nil {
		done()
		return nil, nil, nil, err
	}
	return db, rc, done, nil
}

func masterPos(ctx context.Context, db *sql.DB) (string, uint32, error) {
	var file string
	var pos uint32
	var a, b sql.NullString
	if err := db.QueryRowContext(ctx, "SHOW MASTER STATUS").Scan(&file, &pos, &a, &b); err != nil {
		return "", 0, fmt.Errorf("show master status: %w", err)
	}
	return file, pos, nil
}

// execBatched runs statements, many per round trip (multiStatements).
type execBatched struct {
	ctx context.Context
	db  *sql.DB
	buf strings.Builder
	err error
}

func (e *execBatched) add(format string, args ...any) {
	fmt.Fprintf(&e.buf, format, args...)
	if e.buf.Len() > 1<<20 {
		e.flush()
	}
}

func (e *execBatched) flush() {
	if e.err == nil && e.buf.Len() > 0 {
		_, e.err = e.db.ExecContext(e.ctx, e.buf.String())
	}
	e.buf.Reset()
}

// itemRow renders one 10-column row of rs_bench.items.
func itemRow(id int) string {
	return fmt.Sprintf("(%d,%d,'SKU-%d-XL',%d,%d.%02d,0.%02d,'new','gift wrap, deliver after 6pm #%d','2024-05-01 10:20:30.123','2024-05-01 10:21:00')",
		id, 80000+id%1000, id%9973, id%50, id%10000, id%100, id%90, id)
}

// itemsWorkload is the binlog drain's N row changes: 75% inserts (in
// transactions of 100 rows), 20% updates and 5% deletes (each a statement
// changing 100 rows in its own transaction). It returns the live row count.
func itemsWorkload(ctx context.Context, db *sql.DB, n int) (live int, err error) {
	ins := n * 75 / 100 / 100 * 100
	del := n * 5 / 100 / 100 * 100
	upd := n - ins - del
	e := &execBatched{ctx: ctx, db: db}
	for i := 0; i < ins; i += 100 {
		e.buf.WriteString("BEGIN; INSERT INTO rs_bench.items VALUES ")
		for j := i; j < min(i+100, ins); j++ {
			if j > i {
				e.buf.WriteByte(',')
			}
			e.buf.WriteString(itemRow(j))
		}
		e.add("; COMMIT;")
	}
	for i := 0; i < upd; i += 100 {
		// wraps over the inserted ids if upd > ins
		lo := i % ins
		hi := lo + min(100, upd-i)
		e.add("BEGIN; UPDATE rs_bench.items SET qty=qty+1, status='paid', updated_at='2024-05-02 00:00:00' WHERE id >= %d AND id < %d; COMMIT;", lo, hi)
	}
	for i := 0; i < del; i += 100 {
		hi := ins - i
		e.add("BEGIN; DELETE FROM rs_bench.items WHERE id >= %d AND id < %d; COMMIT;", hi-100, hi)
	}
	e.flush()
	return ins - del, e.err
}

func binlogConfig(name, file string, pos uint32, table string, serverID int, sinks string, workDir string) string {
	return fmt.Sprintf(`name: %[1]s
source:
  binlog:
    addr: 127.0.0.1:3307
    user: root
    flavor: mariadb
    server_id: %[5]d
    start: "%[2]s:%[3]d"
    include: ["rs_bench\\.%[4]s"]
checkpoint:
  file: %[7]s/%[1]s.checkpoint.json
redis:
  addr: 127.0.0.1:6379
  db: %[8]d
deadletter:
  file: %[7]s/%[1]s.deadletter.jsonl
admin:
  addr: ADMIN
log:
  level: warn
tables:
  - match: rs_bench.%[4]s
%[6]s`, name, file, pos, table, serverID, sinks, workDir, sinkDB)
}

func runBinlogDrain(ctx context.Context, o *options, t *table) error {
	n := o.n(200_000)
	db, rc, done, err := itemsEnv(ctx, o)
	if err != nil {
		return err
	}
	defer done()

	file, pos, err := masterPos(ctx, db)
	if err != nil {
		return err
	}
	wstart := time.Now()
	live, err := itemsWorkload(ctx, db, n)
	if err != nil {
		return fmt.Errorf("write workload: %w", err)
	}
	wrote := time.Since(wstart)
	o.log.Info("binlog workload written", "rows", n, "took", wrote.Round(time.Millisecond),
		"rate", rate(float64(n)/wrote.Seconds(), "rows/s"))

	// rowsync: the checkpoint store is empty, so it starts at start: (the
	// position before the writes), as a stopped rowsync checkpointed there.
	cfg := binlogConfig("bench-binlog", file, pos, "items", 1<<29+101,
		"    redis_hash:\n      key: \"{db}_{table}_{pk}\"\n", o.work)
	res, redisCPU, err := timedDrain(ctx, o, "bench-binlog", cfg, n)
	if err != nil {
		return err
	}
	if err := checkHashes(ctx, rc, live); err != nil {
		return err
	}
	o.log.Info("rowsync binlog drain", "rows/s", int(res.rps()), "startup", res.startup, "steady", int(res.steadyRPS), "max_rss_mb", res.peakRSS>>20)

	if err := flush(ctx, sinkDB); err != nil {
		return err
	}
	nres, err := naiveBinlog(ctx, o, rc, file, pos, n, "items", func(ctx context.Context, key string, fields []any) error {
		if fields == nil {
			return rc.Del(ctx, key).Err()
		}
		if err := rc.Del(ctx, key).Err(); err != nil {
			return err
		}
		return rc.HSet(ctx, key, fields...).Err()
	})
	if err != nil {
		return fmt.Errorf("naive: %w", err)
	}
	if err := waitDBSize(ctx, rc, int64(live), 30*time.Second); err != nil {
		return fmt.Errorf("after the naive drain: %w", err)
	}
	t.note("%s: %s (includes startup; the syncer/consumer baselines are single-threaded).", "binlog drain", cpuNote(res.cpu, redisCPU, n))
	rps, nrps := res.rps(), float64(n)/nres.Seconds()
	t.add(row{bench: fmt.Sprintf("binlog → Redis hashes, drain of %dk rows", n/1000),
		figure: rate(rps, "rows/s"), baseline: rate(nrps, "rows/s") + " (syncer, DEL+HSET/row)",
		ratio: ratio(rps, nrps), target: "≥ 100k rows/s", pass: verdict(rps >= 100_000)})
	t.note("binlog drain: rowsync %.0f rows/s from process start (startup+connect %s), %.0f rows/s after the first ack; peak RSS %d MiB; the MariaDB wrote the %d rows at %.0f rows/s.",
		rps, res.startup.Round(time.Millisecond), res.steadyRPS, res.peakRSS>>20, n, float64(n)/wrote.Seconds())
	return nil
}

// checkItem checks that row id was projected with typed values.
func checkItem(ctx context.Context, rc *goredis.Client, id int) error {
	h, err := rc.HGetAll(ctx, fmt.Sprintf("%s_items_%d", benchSchema, id)).Result()
	if err != nil {
		return err
	}
	if h["status"] != "paid" || h["sku"] != fmt.Sprintf("SKU-%d-XL", id%9973) {
		return fmt.Errorf("row %d projected wrongly: %v", id, h)
	}
	return nil
}

// naiveBinlog is the baseline: go-mysql's BinlogSyncer over the same
// range, one write per changed row (apply(key, nil) for a delete), each
// its own round trip. It returns the time to handle n rows.
func naiveBinlog(ctx context.Context, o *options, rc *goredis.Client, file string, pos uint32, n int, table string,
	apply func(ctx context.Context, key string, fields []any) error) (time.Duration, error) {
	syncer := replication.NewBinlogSyncer(replication.BinlogSyncerConfig{
		ServerID: 1<<29 + 202, Flavor: "mariadb", Host: "127.0.0.1", Port: 3307, User: "root",
		Logger: slog.New(slog.DiscardHandler),
	})
	defer syncer.Close()
	start := time.Now()
	st, err := syncer.StartSync(mysql.Position{Name: file, Pos: pos})
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	done := 0
	for done < n {
		ev, err := st.GetEvent(ctx)
		if err != nil {
			return 0, fmt.Errorf("after %d rows: %w", done, err)
		}
		re, ok := ev.Event.(*replication.RowsEvent)
		if !ok || string(re.Table.Schema) != benchSchema || string(re.Table.Table) != table {
			continue
		}
		cols := re.Table.ColumnNameString()
		step, off := 1, 0
		del := false
		switch ev.Header.EventType {
		case replication.UPDATE_ROWS_EVENTv1, replication.UPDATE_ROWS_EVENTv2, replication.MARIADB_UPDATE_ROWS_COMPRESSED_EVENT_V1:
			step, off = 2, 1 // before, after pairs: write the after image
		case replication.DELETE_ROWS_EVENTv1, replication.DELETE_ROWS_EVENTv2, replication.MARIADB_DELETE_ROWS_COMPRESSED_EVENT_V1:
			del = true
		}
		for i := off; i < len(re.Rows); i += step {
			r := re.Rows[i]
			key := fmt.Sprintf("%s_%s_%v", benchSchema, table, r[0])
			var fields []any
			if !del {
				fields = make([]any, 0, 2*len(r))
				for j, v := range r {
					if j < len(cols) && v != nil {
						fields = append(fields, cols[j], fmt.Sprint(v))
					}
				}
			}
			if err := apply(ctx, key, fields); err != nil {
				return 0, err
			}
			done++
		}
	}
	return time.Since(start), nil
}
