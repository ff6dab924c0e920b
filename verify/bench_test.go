package verify

import (
	"context"
	"fmt"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkMemory compares Redis with tables of 10,000 and 80,000 rows at
// several chunk sizes and reports, over the comparison, the peak of the
// live heap (as of each GC, runtime/metrics /gc/heap/live:bytes) and of
// the heap in use (garbage not yet collected included), each above what
// was live before it started, sampled every millisecond: with the
// streaming comparison they grow with the chunk, not with the rows. The
// table "missing" has no hashes at all (every row reported).
//
//	go test -run - -bench Memory -benchtime 1x ./verify
func BenchmarkMemory(b *testing.B) {
	e := newEnv(b, false)
	for _, t := range []struct {
		name    string
		rows    int
		project bool
	}{{"t10k", 10_000, true}, {"t80k", 80_000, true}, {"missing", 80_000, false}} {
		e.exec("CREATE TABLE " + e.schema + "." + t.name + " (id INT PRIMARY KEY, a VARCHAR(40), b BIGINT, c DATETIME(3))")
		for start := 1; start <= t.rows; start += 5000 {
			var sb strings.Builder
			for i := start; i < start+5000 && i <= t.rows; i++ {
				if i > start {
					sb.WriteByte(',')
				}
				fmt.Fprintf(&sb, "(%d,'row number %d',%d,'2024-05-06 07:08:09.123')", i, i, i*1000)
			}
			e.exec("INSERT INTO " + e.schema + "." + t.name + " VALUES " + sb.String())
		}
		if t.project {
			e.project(t.name)
		}
	}
	for _, c := range []struct {
		table string
		rows  int
		chunk int
	}{
		{"t10k", 10_000, 1000}, {"t80k", 80_000, 1000}, {"missing", 80_000, 1000},
		{"t80k", 80_000, 200}, {"t80k", 80_000, 5000},
	} {
		b.Run(fmt.Sprintf("table=%s/chunk=%d", c.table, c.chunk), func(b *testing.B) {
			im, _ := e.redis.Image(e.schema, c.table)
			var peak, peakLive uint64
			for i := 0; i < b.N; i++ {
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				base := ms.HeapAlloc
				live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
				metrics.Read(live)
				liveBase := live[0].Value.Uint64()
				stop := make(chan struct{})
				var wg sync.WaitGroup
				wg.Add(1)
				go func() {
					defer wg.Done()
					var m runtime.MemStats
					for {
						runtime.ReadMemStats(&m)
						peak = max(peak, m.HeapAlloc-min(base, m.HeapAlloc))
						metrics.Read(live)
						v := live[0].Value.Uint64()
						peakLive = max(peakLive, v-min(liveBase, v))
						select {
						case <-stop:
							return
						case <-time.After(time.Millisecond):
						}
					}
				}()
				st, err := Redis(context.Background(), e.rf, e.rdb, im, e.schema, c.table, Options{Chunk: c.chunk})
				close(stop)
				wg.Wait()
				if err != nil {
					b.Fatal(err)
				}
				if st.Rows != c.rows || (c.table == "missing") != (st.Missing == c.rows) {
					b.Fatalf("stats %v", st)
				}
			}
			b.ReportMetric(float64(peakLive)/(1<<20), "peak-live-MiB")
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
			b.ReportMetric(float64(c.rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
