package binlog

import (
	"context"
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/mysqlmeta"
)

const benchRows = 50000

var benchOnce struct {
	sync.Once
	schema, file string
	pos          uint32
	err          error
}

// benchData writes benchRows row changes (inserts in transactions of 10
// rows, then single-row updates) once, and returns where they start.
func benchData(b *testing.B) (schema, file string, pos uint32) {
	benchOnce.Do(func() {
		db, s := testDB(b)
		benchOnce.schema = s
		mustExec(b, db, "CREATE TABLE items (id BIGINT PRIMARY KEY, name VARCHAR(64), price DECIMAL(10,2), "+
			"qty INT, updated DATETIME(3), note TEXT)")
		var p string
		if err := db.QueryRow("SHOW MASTER STATUS").Scan(&benchOnce.file, &p, new(string), new(string)); err != nil {
			benchOnce.err = err
			return
		}
		fmt.Sscan(p, &benchOnce.pos)
		var q strings.Builder
		inserts := benchRows * 4 / 5
		for i := 0; i < inserts; i += 10 {
			q.WriteString("BEGIN; INSERT INTO items VALUES ")
			for j := i; j < i+10; j++ {
				if j > i {
					q.WriteByte(',')
				}
				fmt.Fprintf(&q, "(%d, 'item %d ✓', %d.%02d, %d, '2024-05-01 10:00:00.123', 'note')", j, j, j%1000, j%100, j%7)
			}
			q.WriteString("; COMMIT;")
			if q.Len() > 1<<20 {
				mustExec(b, db, q.String())
				q.Reset()
			}
		}
		for i := 0; i < benchRows-inserts; i++ {
			fmt.Fprintf(&q, "UPDATE items SET qty = qty + 1 WHERE id = %d;", i)
			if q.Len() > 1<<20 {
				mustExec(b, db, q.String())
				q.Reset()
			}
		}
		if q.Len() > 0 {
			mustExec(b, db, q.String())
		}
	})
	if benchOnce.err != nil {
		b.Fatal(benchOnce.err)
	}
	return benchOnce.schema, benchOnce.file, benchOnce.pos
}

// BenchmarkDrain times reading benchRows pre-written row changes: the
// source (decode to typed cdc.Events, batching, checkpoint bookkeeping)
// beside the raw go-mysql syncer that only parses the binlog (its ceiling).
//
//	go test -run '^$' -bench Drain -benchtime 3x ./source/binlog/
func BenchmarkDrain(b *testing.B) {
	schema, file, pos := benchData(b) // dropped when the parent ends
	b.Run("source", func(b *testing.B) {
		b.ResetTimer()
		start := time.Now()
		for range b.N {
			s := newSource(b, schema, nil, func(c *Config) { c.Start = fmt.Sprintf("%s:%d", file, pos) })
			drainCount(b, s, benchRows)
			s.Close(context.Background())
		}
		b.ReportMetric(float64(benchRows*b.N)/time.Since(start).Seconds(), "events/s")
	})
	b.Run("raw-syncer", func(b *testing.B) {
		b.ResetTimer()
		start := time.Now()
		for range b.N {
			rawDrain(b, schema, file, pos)
		}
		b.ReportMetric(float64(benchRows*b.N)/time.Since(start).Seconds(), "events/s")
	})
}

// drainCount reads and acks batches until n events went by, keeping none
// (as a pipeline would hand them on).
func drainCount(b *testing.B, s *Source, n int) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for got := 0; got < n; {
		batch, err := s.Next(ctx)
		if err != nil {
			b.Fatalf("next after %d events: %v", got, err)
		}
		got += len(batch.Events)
		if err := batch.Ack(ctx, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// rawDrain counts rows with a bare BinlogSyncer, no conversion.
func rawDrain(b *testing.B, schema, file string, pos uint32) {
	syncer := replication.NewBinlogSyncer(replication.BinlogSyncerConfig{ServerID: 1<<29 + 7, Flavor: "mariadb",
		Host: "127.0.0.1", Port: 3307, User: "root", ParseTime: true, Logger: testLogger(b)})
	defer syncer.Close()
	st, err := syncer.StartSync(mysql.Position{Name: file, Pos: pos})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n := 0
	for n < benchRows {
		ev, err := st.GetEvent(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if re, ok := ev.Event.(*replication.RowsEvent); ok && string(re.Table.Schema) == schema {
			if re.Type() == replication.EnumRowsEventTypeUpdate {
				n += len(re.Rows) / 2
			} else {
				n += len(re.Rows)
			}
		}
	}
}

var benchRaw struct {
	sync.Once
	events [][]byte
	file   string
}

// BenchmarkDecode times the decode side alone on the BenchmarkDrain data,
// read from the server once and kept as bytes: go-mysql's parsing and
// rows() turning the row images into cdc.Events, with the own decoder
// (decode.go) and with go-mysql's (the old path), no network, no batching.
//
//	go test -run '^$' -bench Decode -benchmem ./source/binlog/
func BenchmarkDecode(b *testing.B) {
	schema, file, pos := benchData(b)
	benchRaw.Do(func() {
		benchRaw.file = file
		syncer := replication.NewBinlogSyncer(replication.BinlogSyncerConfig{ServerID: 1<<29 + 11, Flavor: "mariadb",
			Host: "127.0.0.1", Port: 3307, User: "root", Logger: testLogger(b)})
		defer syncer.Close()
		st, err := syncer.StartSync(mysql.Position{Name: file, Pos: pos})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		for n := 0; n < benchRows; {
			ev, err := st.GetEvent(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if ev.Header.EventType == replication.ROTATE_EVENT && ev.Header.LogPos == 0 {
				continue
			}
			benchRaw.events = append(benchRaw.events, ev.RawData)
			if re, ok := ev.Event.(*replication.RowsEvent); ok && string(re.Table.Schema) == schema {
				if re.Type() == replication.EnumRowsEventTypeUpdate {
					n += len(re.Rows) / 2
				} else {
					n += len(re.Rows)
				}
			}
		}
	})
	// the tables' definitions from the server, as the source reads them;
	// no source runs (its syncer would allocate beside the measurement)
	conn := dbOpen(b, "")
	defer conn.Close()
	cat := mysqlmeta.NewCatalog(conn)
	load := func(ctx context.Context, db, table string) (*cdc.TableDef, error) {
		return loadTable(ctx, cat, db, table)
	}
	cfg := Config{Include: []string{regexp.QuoteMeta(schema) + `\..*`}}.withDefaults()
	filter, err := newTableFilter(cfg.Include, nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, own := range []bool{false, true} {
		name := "gomysql"
		if own {
			name = "own"
		}
		b.Run(name, func(b *testing.B) {
			s := &Source{cfg: cfg, log: testLogger(b), filter: filter, flavor: mysql.MariaDBFlavor,
				tables: map[string]*cdc.TableDef{}, plans: map[string]*plan{}, file: benchRaw.file, load: load}
			var ms0, ms1 runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&ms0)
			cpu0 := processCPU()
			b.ResetTimer()
			rows := 0
			// as a batch going on and acked: its events are dropped and
			// their row maps recycled
			acked := func() {
				rows += len(s.cur)
				clear(s.cur)
				s.cur, s.curTxIdx = s.cur[:0], 0
				s.curRows.Recycle()
				s.curRows = nil
			}
			for range b.N {
				p := replication.NewBinlogParser()
				p.SetFlavor(mysql.MariaDBFlavor)
				p.SetParseTime(true)
				p.SetTimestampStringLocation(time.UTC)
				p.SetRenderJSONAsMySQLText(true)
				if own {
					p.SetRowsEventDecodeFunc(decodeRowsHeader)
				}
				for _, raw := range benchRaw.events {
					ev, err := p.Parse(raw)
					if err != nil {
						b.Fatal(err)
					}
					if err := s.handle(context.Background(), ev); err != nil {
						b.Fatal(err)
					}
					if len(s.cur) >= 1024 {
						acked()
					}
				}
				acked()
			}
			b.StopTimer()
			cpu := processCPU() - cpu0
			runtime.ReadMemStats(&ms1)
			if rows != benchRows*b.N || len(s.curRejects) > 0 {
				b.Fatalf("%d rows, %d rejects", rows, len(s.curRejects))
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(rows), "ns/row")
			// process CPU (GC workers included): steadier than wall time on a shared machine
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(rows)/1e3, "cpu-µs/row")
			b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(rows), "allocs/row")
			b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/float64(rows), "B/row")
		})
	}
}

// processCPU is the process's user+system CPU time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
