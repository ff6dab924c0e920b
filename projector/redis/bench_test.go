package redis

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/rowsync/rowsync/cdc"
)

// Benchmarks apply batches of 1,000 distinct 10-column rows to Redis DB 1.
// BenchmarkApply is the projector; BenchmarkNaive writes the same rows one
// round trip per command, as a consumer without batching would. Compare
// their rows/s. The machine is shared, so each benchmark also reports the
// CPU time spent per row by redis-server (read from /proc, so only when
// Redis runs on this machine) and by the benchmark process: those are what
// bound the throughput of an otherwise idle box.
//
//	go test -run '^$' -bench . -benchtime 3s ./projector/redis/

const benchBatch = 1000

var benchCols = []cdc.Column{
	cdc.ParseColumnType("id", "bigint(20)"),
	cdc.ParseColumnType("name", "varchar(64)"),
	cdc.ParseColumnType("email", "varchar(128)"),
	cdc.ParseColumnType("price", "decimal(10,2)"),
	cdc.ParseColumnType("qty", "int(11)"),
	cdc.ParseColumnType("created", "datetime(3)"),
	cdc.ParseColumnType("updated", "timestamp"),
	cdc.ParseColumnType("status", "enum('new','paid','shipped')"),
	cdc.ParseColumnType("note", "text"),
	cdc.ParseColumnType("score", "double"),
}

// benchBatches returns n batches of benchBatch updates with distinct keys.
// Their rows share one layout, as the binlog decoder's rows of a table do.
func benchBatches(db string, n int) [][]cdc.Event {
	return benchBatchesOf(db, n, true)
}

// benchBatchesOf is benchBatches with rows that share one layout (shared)
// or each have their own, as rows decoded from JSON messages do.
func benchBatchesOf(db string, n int, shared bool) [][]cdc.Event {
	names := make([]string, len(benchCols))
	for i := range benchCols {
		names[i] = benchCols[i].Name
	}
	layout, err := cdc.NewLayout(names)
	if err != nil {
		panic(err)
	}
	out := make([][]cdc.Event, n)
	t0 := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	for b := range out {
		evs := make([]cdc.Event, benchBatch)
		for i := range evs {
			id := int64(b*benchBatch + i)
			vals := []cdc.Value{id, fmt.Sprintf("user %d", id), fmt.Sprintf("user%d@example.com", id), cdc.Decimal(fmt.Sprintf("%d.%02d", id%10000, id%100)),
				id % 50, t0.Add(time.Duration(id) * time.Millisecond), t0.Add(time.Duration(id) * time.Second), "paid", "a short note about the order, with ünïcödé", float64(id) / 7}
			var row *cdc.Row
			if shared {
				row = cdc.NewRow(layout)
				for j, v := range vals {
					row.SetAt(j, v)
				}
			} else {
				row = new(cdc.Row)
				for j, v := range vals {
					row.Set(names[j], v)
				}
			}
			evs[i] = cdc.Event{DB: db, Table: "orders", Op: cdc.Update, PK: []string{"id"},
				Before: row, After: row, Columns: benchCols}
		}
		out[b] = evs
	}
	return out
}

func BenchmarkApply(b *testing.B) {
	// unguarded is the fast path (DEL+HSET in MULTI/EXEC), type_check and
	// guarded the checked path (staging keys and the commit script).
	for _, name := range []string{"unguarded", "type_check", "guarded"} {
		b.Run(name, func(b *testing.B) {
			c := newClient(b)
			db := uniqueDB(b, c)
			tc := TableConfig{TypeCheck: name == "type_check"}
			if name == "guarded" {
				tc.VersionField = "_v"
			}
			p := newProjector(b, c, rules(b, db+`\..*`, tc))
			batches := benchBatches(db, 20)
			ctx := b.Context()
			b.ReportAllocs()
			cpu := startCPU(b, c)
			for n := 0; b.Loop(); n++ {
				evs := batches[n%len(batches)]
				for i := range evs {
					evs[i].Pos.Version = uint64(n + 1) // always newer: no skips
				}
				if err := p.Apply(ctx, evs); err != nil {
					b.Fatal(err)
				}
			}
			cpu.report(b, b.N*benchBatch)
		})
	}
	b.Run("parallel4", func(b *testing.B) {
		// Four shards applying at once, as the pipeline runs them.
		c := newClient(b)
		db := uniqueDB(b, c)
		p := newProjector(b, c, rules(b, db+`\..*`, TableConfig{}))
		batches := benchBatches(db, 8)
		var next atomic.Int64
		b.SetParallelism(2)
		b.ReportAllocs()
		cpu := startCPU(b, c)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := p.Apply(b.Context(), batches[next.Add(1)%int64(len(batches))]); err != nil {
					b.Error(err)
					return
				}
			}
		})
		cpu.report(b, b.N*benchBatch)
		if p.conns != nil {
			// Two Apply calls at once, Parallel 4: up to 8 transactions
			// in flight, 4 connections kept idle.
			b.ReportMetric(float64(p.conns.dialled.Load())/float64(b.N), "dials/op")
		}
	})
}

// BenchmarkFastPath sends the fast path's chunks as the projector does
// (MULTI/EXEC) and as a plain pipeline (no MULTI: a reader could see a
// row missing between its DEL and its HSET), at several chunk sizes, to
// show what the transaction and the chunking cost.
func BenchmarkFastPath(b *testing.B) {
	for _, keys := range []int{64, 256, 1000} {
		for _, tx := range []bool{true, false} {
			name := fmt.Sprintf("keys=%d/%s", keys, map[bool]string{true: "multi", false: "pipeline"}[tx])
			b.Run(name, func(b *testing.B) {
				c := newClient(b)
				db := uniqueDB(b, c)
				p, err := NewWithConfig(Config{ScriptKeys: keys, Parallel: 1}, c, rules(b, db+`\..*`, TableConfig{}), nil)
				must(b, err)
				batches := benchBatches(db, 20)
				ctx := b.Context()
				b.ReportAllocs()
				cpu := startCPU(b, c)
				for n := 0; b.Loop(); n++ {
					evs := batches[n%len(batches)]
					pl := newPlan(len(evs))
					for i := range evs {
						pl.add(i, &evs[i], p.tables.Lookup(db, "orders").Config)
					}
					for _, ch := range p.encode(evs, pl) {
						var pipe goredis.Pipeliner
						if tx {
							pipe = c.TxPipeline()
						} else {
							pipe = c.Pipeline()
						}
						pipe.Do(ctx, ch.dels...)
						for _, w := range ch.writes {
							pipe.Do(ctx, w...)
						}
						if _, err := pipe.Exec(ctx); err != nil {
							b.Fatal(err)
						}
					}
				}
				cpu.report(b, b.N*benchBatch)
			})
		}
	}
}

// BenchmarkCeiling writes the same rows with raw pipelined DEL+HSET, one
// pipeline per batch: no per-key atomicity, no type check, no version
// guard, no key rendering beyond Sprintf. It shows what the client and
// server cost without the projector's guarantees.
func BenchmarkCeiling(b *testing.B) {
	c := newClient(b)
	db := uniqueDB(b, c)
	batches := benchBatches(db, 20)
	ctx := b.Context()
	b.ReportAllocs()
	cpu := startCPU(b, c)
	for n := 0; b.Loop(); n++ {
		pipe := c.Pipeline()
		for _, e := range batches[n%len(batches)] {
			key := fmt.Sprintf("%s_%s_%d", e.DB, e.Table, e.After.Get("id"))
			args := make([]any, 0, 2*e.After.Len())
			for i := range e.Columns {
				col := &e.Columns[i]
				if s, ok := cdc.FormatText(col, e.After.Get(col.Name)); ok {
					args = append(args, col.Name, s)
				}
			}
			pipe.Del(ctx, key)
			pipe.HSet(ctx, key, args...)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			b.Fatal(err)
		}
	}
	cpu.report(b, b.N*benchBatch)
}

func BenchmarkNaive(b *testing.B) {
	for _, withDel := range []bool{false, true} {
		name := map[bool]string{false: "hset", true: "del+hset"}[withDel]
		b.Run(name, func(b *testing.B) {
			c := newClient(b)
			db := uniqueDB(b, c)
			batches := benchBatches(db, 20)
			ctx := b.Context()
			b.ReportAllocs()
			cpu := startCPU(b, c)
			for n := 0; b.Loop(); n++ {
				for _, e := range batches[n%len(batches)] {
					key := fmt.Sprintf("%s_%s_%d", e.DB, e.Table, e.After.Get("id"))
					args := make([]any, 0, 2*e.After.Len())
					for i := range e.Columns {
						col := &e.Columns[i]
						if s, ok := cdc.FormatText(col, e.After.Get(col.Name)); ok {
							args = append(args, col.Name, s)
						}
					}
					if withDel {
						if err := c.Del(ctx, key).Err(); err != nil {
							b.Fatal(err)
						}
					}
					if err := c.HSet(ctx, key, args...).Err(); err != nil {
						b.Fatal(err)
					}
				}
			}
			cpu.report(b, b.N*benchBatch)
		})
	}
}

// cpuMeter measures wall time and CPU time of redis-server and of this
// process over a benchmark.
type cpuMeter struct {
	redisPID      int
	redis0, self0 time.Duration
}

func startCPU(b *testing.B, c *goredis.Client) *cpuMeter {
	m := &cpuMeter{}
	if info, err := c.Info(b.Context(), "server").Result(); err == nil {
		for line := range strings.SplitSeq(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
				m.redisPID, _ = strconv.Atoi(v)
			}
		}
	}
	m.redis0, m.self0 = m.times()
	b.ResetTimer()
	return m
}

func (m *cpuMeter) times() (redis, self time.Duration) {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	if m.redisPID == 0 {
		return -1, self
	}
	st, err := os.ReadFile("/proc/" + strconv.Itoa(m.redisPID) + "/stat")
	if err != nil {
		return -1, self
	}
	// Fields after the ")" closing the command name; utime and stime are
	// fields 14 and 15 of the whole line, in clock ticks (100/s on Linux).
	f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+1:]))
	if len(f) < 13 {
		return -1, self
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond, self
}

func (m *cpuMeter) report(b *testing.B, rows int) {
	b.StopTimer()
	redis, self := m.times()
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(self-m.self0)/float64(rows)/1e3, "go-cpu-µs/row")
	if redis >= 0 && m.redis0 >= 0 {
		b.ReportMetric(float64(redis-m.redis0)/float64(rows)/1e3, "redis-cpu-µs/row")
	}
}

// BenchmarkEncode is the projector's own CPU per row without Redis traffic:
// coalescing the batch, rendering keys and building the DEL/HSET argument
// lists (what Apply does before the first byte is sent).
//
//	go test -run '^$' -bench Encode -benchmem ./projector/redis/
//
// layout=table rows share their table's layout, as the binlog decoder's
// do; layout=row rows each have their own, as rows decoded from JSON.
func BenchmarkEncode(b *testing.B) {
	for _, shared := range []bool{true, false} {
		b.Run(map[bool]string{true: "layout=table", false: "layout=row"}[shared], func(b *testing.B) {
			c := newClient(b) // only to find redis-server for startCPU; Encode sends nothing
			p := newProjector(b, c, rules(b, `bench\..*`, TableConfig{}))
			batches := benchBatchesOf("bench", 4, shared)
			r := p.tables.Lookup("bench", "orders").Config
			b.ReportAllocs()
			cpu := startCPU(b, c) // go-cpu-µs/row counts the GC's work on the other core too
			for n := 0; b.Loop(); n++ {
				evs := batches[n%len(batches)]
				pl := p.getPlan(len(evs)) // a plan of an earlier call, as Apply takes
				for i := range evs {
					pl.add(i, &evs[i], r)
				}
				if len(p.encode(evs, pl)) == 0 {
					b.Fatal("no chunks")
				}
				p.putPlan(pl)
			}
			cpu.report(b, b.N*benchBatch)
		})
	}
}

// BenchmarkSend measures the Redis client's share: the same encoded
// chunks (fast path, ScriptKeys 256, one connection) sent through
// go-redis as runChunk sent them before (go-redis), through the
// projector's own connections as runChunk sends them now (resp), and
// through a minimal RESP writer and reply skipper over a plain
// connection, the floor any client could reach (raw). Encoding is outside
// the timed loop. On 2026-12-05 (cachegrind, instructions per row from
// two -benchtime=Nx runs): go-redis 12.6k, resp 4.0k, raw 4.6k; 2,078,
// 8 and 0 allocations per 1,000 rows.
//
//	go test -run '^$' -bench Send -benchmem ./projector/redis/
func BenchmarkSend(b *testing.B) {
	for _, client := range []string{"go-redis", "resp", "raw"} {
		b.Run(client, func(b *testing.B) {
			c := newClient(b)
			db := uniqueDB(b, c)
			p, err := NewWithConfig(Config{Parallel: 1}, c, rules(b, db+`\..*`, TableConfig{}), nil)
			must(b, err)
			var encoded [][]*chunk
			for _, evs := range benchBatches(db, 4) {
				pl := newPlan(len(evs))
				for i := range evs {
					pl.add(i, &evs[i], p.tables.Lookup(db, "orders").Config)
				}
				encoded = append(encoded, p.encode(evs, pl))
			}
			ctx := b.Context()
			var raw *rawConn
			if client == "raw" {
				raw = dialRaw(b)
			}
			b.ReportAllocs()
			cpu := startCPU(b, c)
			for n := 0; b.Loop(); n++ {
				for _, ch := range encoded[n%len(encoded)] {
					var err error
					switch client {
					case "raw":
						err = raw.send(ch)
					case "resp":
						_, err = p.runChunkRESP(ctx, ch)
					default:
						_, err = p.runChunkGoRedis(ctx, ch)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			}
			cpu.report(b, b.N*benchBatch)
		})
	}
}

// rawConn is the minimal client of BenchmarkSend: RESP written by hand
// into one reused buffer, replies skipped line by line.
type rawConn struct {
	conn net.Conn
	rd   *bufio.Reader
	buf  []byte
}

func dialRaw(b *testing.B) *rawConn {
	conn, err := net.Dial("tcp", testAddr)
	must(b, err)
	b.Cleanup(func() { _ = conn.Close() })
	r := &rawConn{conn: conn, rd: bufio.NewReaderSize(conn, 64<<10)}
	r.buf = r.appendCmd(r.buf[:0], []any{"select", strconv.Itoa(testDB)})
	_, err = conn.Write(r.buf)
	must(b, err)
	_, err = r.rd.ReadSlice('\n')
	must(b, err)
	return r
}

func (r *rawConn) appendCmd(buf []byte, args []any) []byte {
	buf = strconv.AppendInt(append(buf, '*'), int64(len(args)), 10)
	buf = append(buf, '\r', '\n')
	for _, a := range args {
		var s string
		switch v := a.(type) {
		case string:
			s = v
		case *string:
			s = *v
		}
		buf = strconv.AppendInt(append(buf, '$'), int64(len(s)), 10)
		buf = append(append(append(buf, '\r', '\n'), s...), '\r', '\n')
	}
	return buf
}

// send runs the chunk as MULTI, DEL, the writes, EXEC, and reads the
// replies: +OK, one +QUEUED per command, the EXEC array of integers.
func (r *rawConn) send(c *chunk) error {
	buf := r.appendCmd(r.buf[:0], []any{"multi"})
	buf = r.appendCmd(buf, c.dels)
	for _, w := range c.writes {
		buf = r.appendCmd(buf, w)
	}
	r.buf = r.appendCmd(buf, []any{"exec"})
	if _, err := r.conn.Write(r.buf); err != nil {
		return err
	}
	cmds := 1 + len(c.writes)
	for range 1 + cmds + 1 + cmds {
		line, err := r.rd.ReadSlice('\n')
		if err != nil {
			return err
		}
		if line[0] == '-' {
			return fmt.Errorf("redis: %s", line)
		}
	}
	return nil
}
