package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/rowsync/rowsync/internal/benchdata"
)

// The refetch scenario drains the same changes twice, plainly and with
// refetch: true (every change only a trigger, the row read again by
// primary key), on the binlog and the Kafka canal-json paths, each with
// the drain's usual mix and with hot keys (many changes of few rows: the
// refetcher reads each key once per batch). On the binlog path a third
// drain reads the rows from a replica of the binlog MariaDB (127.0.0.1:3308,
// started for the run and stopped after it).

const (
	primaryDSN = "root@tcp(127.0.0.1:3307)/"
	replicaDSN = "root@tcp(127.0.0.1:3308)/"
	// hotRows is the hot-key workloads' row count.
	hotRows = 100
)

// drainFig is one measured drain.
type drainFig struct {
	rps      float64
	cpuRow   float64 // rowsync CPU µs per change
	redisRow float64 // redis-server CPU µs per change
	mysqlRow float64 // the refetched server's CPU µs per change
	selects  float64 // SELECTs that server ran during the drain (Com_select)
}

func (d drainFig) String() string {
	return fmt.Sprintf("%s · %.1f µs CPU/row", rate(d.rps, "rows/s"), d.cpuRow)
}

// mysqlServer is a MariaDB whose CPU and SELECT count a drain records.
type mysqlServer struct {
	db  *sql.DB
	pid int
}

func openServer(dsn string) (*mysqlServer, error) {
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(2)
	var name, pidFile string
	if err := db.QueryRow("SHOW VARIABLES LIKE 'pid_file'").Scan(&name, &pidFile); err != nil {
		db.Close()
		return nil, err
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("pid of %s: %w", dsn, err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return &mysqlServer{db: db, pid: pid}, nil
}

func (m *mysqlServer) selects(ctx context.Context) float64 {
	var name string
	var v float64
	_ = m.db.QueryRowContext(ctx, "SHOW GLOBAL STATUS LIKE 'Com_select'").Scan(&name, &v)
	return v
}

// measuredDrain runs one timedDrain of n changes and records the CPU of
// rowsync, Redis and (when src is not nil) the MySQL server refetch reads.
func measuredDrain(ctx context.Context, o *options, name, cfg string, n int, src *mysqlServer) (drainFig, error) {
	var mysql *cpuSeries
	var start time.Time
	var sel0 float64
	if src != nil {
		start, sel0 = time.Now(), src.selects(ctx)
		mysql = sampleCPU(src.pid, time.Time{})
		defer mysql.close()
	}
	res, redisCPU, err := timedDrain(ctx, o, name, cfg, n)
	if err != nil {
		return drainFig{}, fmt.Errorf("%s: %w", name, err)
	}
	f := drainFig{rps: res.rps(), cpuRow: float64(res.cpu) / float64(n) / 1e3, redisRow: float64(redisCPU) / float64(n) / 1e3}
	if src != nil {
		f.mysqlRow = float64(mysql.at(res.end)-mysql.at(start)) / float64(n) / 1e3
		f.selects = src.selects(ctx) - sel0
	}
	o.log.Info("drain", "name", name, "rows/s", int(f.rps), "cpu_us_row", fmt.Sprintf("%.1f", f.cpuRow), "startup", res.startup.Round(time.Millisecond))
	return f, nil
}

// refetchRow adds the table row of a refetch drain beside its plain drain.
func refetchRow(t *table, label string, re, plain drainFig, baseLabel string) {
	t.add(row{bench: label, figure: re.String(), baseline: plain.String() + " (" + baseLabel + ")",
		ratio: ratio(re.rps, plain.rps), target: "≥ 0.5× plain", pass: verdict(re.rps >= 0.5*plain.rps)})
	t.note("%s: rowsync CPU %.1f µs/row (plain %.1f), redis-server %.1f µs/row (plain %.1f), the refetched MariaDB %.1f µs/row and %.0f SELECTs (≈ one per shard per batch; other clients of the server count too).",
		label, re.cpuRow, plain.cpuRow, re.redisRow, plain.redisRow, re.mysqlRow, re.selects)
}

func runRefetchDrains(ctx context.Context, o *options, t *table) error {
	n := o.n(100_000)
	db, err := openMySQL(o)
	if err != nil {
		return err
	}
	defer db.Close()
	primary, err := openServer(primaryDSN)
	if err != nil {
		return err
	}
	defer primary.db.Close()

	// The replica follows rs_bench from here on.
	file0, pos0, err := masterPos(ctx, db)
	if err != nil {
		return err
	}
	replica, stopReplica, rerr := startReplica(ctx, o, file0, pos0)
	if rerr != nil {
		o.log.Warn("no replica: the replica-DSN drain is left out", "err", rerr)
		t.note("refetch from a replica: not measured (%s).", oneLine(rerr.Error()))
	} else {
		defer stopReplica()
	}

	drop, err := freshSchema(ctx, db, itemsDDL, strings.Replace(itemsDDL, "rs_bench.items", "rs_bench.hot", 1))
	if err != nil {
		return err
	}
	defer drop()
	rc := redisDB(sinkDB)
	defer rc.Close()
	defer flush(context.Background(), sinkDB)

	// --- binlog, the drain's mix ---
	file, pos, err := masterPos(ctx, db)
	if err != nil {
		return err
	}
	live, err := itemsWorkload(ctx, db, n)
	if err != nil {
		return fmt.Errorf("write workload: %w", err)
	}
	plainSinks := "    redis_hash:\n      key: \"{db}_{table}_{pk}\"\n"
	refetchSinks := "    refetch: true\n" + plainSinks
	withMySQL := func(cfg, dsn string) string { return fmt.Sprintf("mysql:\n  dsn: %q\n", dsn) + cfg }
	binlogDrain := func(name, table, sinks, dsn string, count int, src *mysqlServer, check func() error) (drainFig, error) {
		if err := flush(ctx, sinkDB); err != nil {
			return drainFig{}, err
		}
		cfg := binlogConfig(name, file, pos, table, 1<<29+111, sinks, o.work)
		if dsn != "" {
			cfg = withMySQL(cfg, dsn)
		}
		f, err := measuredDrain(ctx, o, name, cfg, count, src)
		if err != nil {
			return f, err
		}
		return f, check()
	}
	checkItems := func() error { return checkHashes(ctx, rc, live) }
	bPlain, err := binlogDrain("bench-rf-binlog-plain", "items", plainSinks, "", n, nil, checkItems)
	if err != nil {
		return err
	}
	bRefetch, err := binlogDrain("bench-rf-binlog-refetch", "items", refetchSinks, primaryDSN, n, primary, checkItems)
	if err != nil {
		return err
	}
	refetchRow(t, fmt.Sprintf("refetch: binlog → Redis, drain of %dk changes", n/1000), bRefetch, bPlain, "plain drain, same changes")
	if replica != nil {
		if err := replica.caughtUp(ctx, db); err != nil {
			return err
		}
		bReplica, err := binlogDrain("bench-rf-binlog-replica", "items", refetchSinks, replicaDSN, n, replica.server, checkItems)
		if err != nil {
			return err
		}
		label := fmt.Sprintf("refetch from a replica: binlog → Redis, drain of %dk changes", n/1000)
		t.add(row{bench: label, figure: bReplica.String(), baseline: bRefetch.String() + " (refetch from the primary)",
			ratio: ratio(bReplica.rps, bRefetch.rps), target: "≥ 0.5× plain", pass: verdict(bReplica.rps >= 0.5*bPlain.rps)})
		t.note("%s: the replica (MariaDB on 127.0.0.1:3308, same machine, caught up before the drain) spent %.1f µs CPU/row and ran %.0f SELECTs; rowsync %.1f µs/row. A replica moves the reads off the primary but adds its lag: a row read before the replica applied the change is older than the change (see README, refetch).",
			label, bReplica.mysqlRow, bReplica.selects, bReplica.cpuRow)
	}

	// --- binlog, hot keys: n changes of hotRows rows ---
	if _, err := db.ExecContext(ctx, "INSERT INTO rs_bench.hot SELECT * FROM rs_bench.items WHERE id < ?", hotRows); err != nil {
		return err
	}
	if file, pos, err = masterPos(ctx, db); err != nil {
		return err
	}
	hn := n / hotRows * hotRows
	e := &execBatched{ctx: ctx, db: db}
	for i := 0; i < n/hotRows; i++ {
		e.add("BEGIN; UPDATE rs_bench.hot SET qty=qty+1, updated_at='2024-05-03 00:00:00' WHERE id < %d; COMMIT;", hotRows)
	}
	e.flush()
	if e.err != nil {
		return fmt.Errorf("hot workload: %w", e.err)
	}
	var qty0 int
	if err := db.QueryRowContext(ctx, "SELECT qty FROM rs_bench.hot WHERE id = 0").Scan(&qty0); err != nil {
		return err
	}
	checkHot := func(table string, qty int) func() error {
		return func() error {
			if err := waitKeys(ctx, rc, benchSchema+"_"+table+"_*", hotRows, 30*time.Second); err != nil {
				return err
			}
			got, err := rc.HGet(ctx, "rs_bench_"+table+"_0", "qty").Result()
			if err != nil || got != strconv.Itoa(qty) {
				return fmt.Errorf("rs_bench_%s_0 qty = %q (%v), want %d", table, got, err, qty)
			}
			return nil
		}
	}
	hPlain, err := binlogDrain("bench-rf-binlog-hot-plain", "hot", plainSinks, "", hn, nil, checkHot("hot", qty0))
	if err != nil {
		return err
	}
	hRefetch, err := binlogDrain("bench-rf-binlog-hot-refetch", "hot", refetchSinks, primaryDSN, hn, primary, checkHot("hot", qty0))
	if err != nil {
		return err
	}
	refetchRow(t, fmt.Sprintf("refetch: binlog → Redis, hot keys (%dk changes of %d rows)", hn/1000, hotRows), hRefetch, hPlain, "plain drain, same changes")

	// --- Kafka canal-json: the same mix, MySQL holding the final rows ---
	// rs_bench.items holds the canal workload's end state but for
	// updated_at: the binlog workload ran the same inserts, updates
	// (qty+1, status paid) and deletes.
	cluster, err := kfake.NewCluster(kfake.Ports(0), kfake.SeedTopics(kafkaPartitions, "rs-bench-rf", "rs-bench-rf-hot"))
	if err != nil {
		return fmt.Errorf("kfake: %w", err)
	}
	defer cluster.Close()
	addr := cluster.ListenAddrs()[0]
	changes, clive := canalWorkload(n)
	if clive != live {
		return fmt.Errorf("canal workload leaves %d rows, the binlog one %d", clive, live)
	}
	if err := produce(ctx, addr, "rs-bench-rf", changes); err != nil {
		return err
	}
	var hot []canalChange
	for i := range hn {
		id := i % hotRows
		hot = append(hot, canalChange{id, benchdata.CanalItemsMessage("UPDATE", id, i)})
	}
	if err := produce(ctx, addr, "rs-bench-rf-hot", hot); err != nil {
		return err
	}
	redisBlock := fmt.Sprintf("redis:\n  addr: 127.0.0.1:6379\n  db: %d\n", sinkDB)
	kafkaDrain := func(name, topic string, refetch bool, count int, check func() error) (drainFig, error) {
		if err := flush(ctx, sinkDB); err != nil {
			return drainFig{}, err
		}
		sink, tbl, src := redisBlock, canalTableYAML, (*mysqlServer)(nil)
		if refetch {
			sink += fmt.Sprintf("mysql:\n  dsn: %q\n", primaryDSN)
			tbl, src = "    refetch: true\n"+canalTableYAML, primary
		}
		cfg := drainConfig(name, kafkaSource(addr, topic, name), o.work, sink, tbl)
		f, err := measuredDrain(ctx, o, name, cfg, count, src)
		if err != nil {
			return f, err
		}
		return f, check()
	}
	kPlain, err := kafkaDrain("bench-rf-kafka-plain", "rs-bench-rf", false, n, checkItems)
	if err != nil {
		return err
	}
	kRefetch, err := kafkaDrain("bench-rf-kafka-refetch", "rs-bench-rf", true, n, checkItems)
	if err != nil {
		return err
	}
	refetchRow(t, fmt.Sprintf("refetch: Kafka canal-json → Redis, drain of %dk msgs", n/1000), kRefetch, kPlain, "plain drain, same messages")
	// The hot messages change items 0..99: plain writes their images,
	// refetch the rows MySQL has (both leave hotRows hashes).
	anyHot := func() error { return waitKeys(ctx, rc, benchSchema+"_items_*", hotRows, 30*time.Second) }
	khPlain, err := kafkaDrain("bench-rf-kafka-hot-plain", "rs-bench-rf-hot", false, hn, anyHot)
	if err != nil {
		return err
	}
	khRefetch, err := kafkaDrain("bench-rf-kafka-hot-refetch", "rs-bench-rf-hot", true, hn, anyHot)
	if err != nil {
		return err
	}
	refetchRow(t, fmt.Sprintf("refetch: Kafka canal-json → Redis, hot keys (%dk msgs of %d rows)", hn/1000, hotRows), khRefetch, khPlain, "plain drain, same messages")
	return nil
}

// replicaServer is the bench's replica of the binlog MariaDB.
type replicaServer struct {
	server *mysqlServer
}

// startReplica starts a MariaDB on 3308 (scripts/mariadb-binlog.sh,
// server id 2) replicating rs_bench from the binlog MariaDB from
// file:pos on, and returns the function that stops replication and the
// server.
func startReplica(ctx context.Context, o *options, file string, pos uint32) (*replicaServer, func(), error) {
	script := filepath.Join(o.root, "scripts", "mariadb-binlog.sh")
	env := append(os.Environ(), "ROWSYNC_MARIADB_PORT=3308", "ROWSYNC_MARIADB_SERVER_ID=2")
	cmd := exec.CommandContext(ctx, "bash", script)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, nil, fmt.Errorf("start the replica: %w: %s", err, lastLines(out, 3))
	}
	stop := func() {
		c := exec.Command("bash", script, "stop")
		c.Env = env
		if out, err := c.CombinedOutput(); err != nil {
			o.log.Warn("stop the replica", "err", err, "out", string(out))
		}
	}
	srv, err := openServer(replicaDSN)
	if err != nil {
		stop()
		return nil, nil, err
	}
	for _, q := range []string{
		"STOP SLAVE",
		"RESET SLAVE ALL",
		"SET GLOBAL replicate_wild_do_table = 'rs_bench.%'",
		"DROP DATABASE IF EXISTS " + benchSchema,
		fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=3307, MASTER_USER='root', MASTER_PASSWORD='', MASTER_LOG_FILE='%s', MASTER_LOG_POS=%d", file, pos),
		"START SLAVE",
	} {
		if _, err := srv.db.ExecContext(ctx, q); err != nil {
			srv.db.Close()
			stop()
			return nil, nil, fmt.Errorf("replica: %s: %w", strings.Fields(q)[0], err)
		}
	}
	return &replicaServer{server: srv}, func() {
		_, _ = srv.db.Exec("STOP SLAVE")
		_, _ = srv.db.Exec("DROP DATABASE IF EXISTS " + benchSchema)
		srv.db.Close()
		stop()
	}, nil
}

// caughtUp waits until the replica has applied everything the primary
// has written so far.
func (r *replicaServer) caughtUp(ctx context.Context, primary *sql.DB) error {
	file, pos, err := masterPos(ctx, primary)
	if err != nil {
		return err
	}
	var res sql.NullInt64
	if err := r.server.db.QueryRowContext(ctx, "SELECT MASTER_POS_WAIT(?, ?, 300)", file, pos).Scan(&res); err != nil {
		return fmt.Errorf("replica catch-up: %w", err)
	}
	if !res.Valid || res.Int64 < 0 {
		return fmt.Errorf("replica did not catch up with %s:%d within 300s (MASTER_POS_WAIT = %v)", file, pos, res)
	}
	return nil
}
