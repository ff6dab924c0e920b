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

// BenchmarkMemory compares Redis with tables of growing size at one chunk
// size and reports, over the comparison, the peak of the live heap (as of
// each GC, runtime/metrics /gc/heap/live:bytes) and of the heap in use
// (garbage not yet collected included), each above what was live before
// it started, sampled every millisecond: with the streaming comparison
// they depend on the chunk, not on the rows. Every row differs in half the cases
// (missing hashes), so the mismatch path is measured too.
//
//	go test -run - -bench Memory -benchtime 1x ./verify
func BenchmarkMemory(b *testing.B) {
	for _, rows := range []int{10_000, 80_000} {
		for _, missing := range []bool{false, true} {
			b.Run(fmt.Sprintf("rows=%d/missing=%v", rows, missing), func(b *testing.B) {
				e := newEnv(b, false, `CREATE TABLE $S.t (id INT PRIMARY KEY, a VARCHAR(40), b BIGINT, c DATETIME(3))`)
				for start := 1; start <= rows; start += 5000 {
					var sb strings.Builder
					for i := start; i < start+5000 && i <= rows; i++ {
						if i > start {
							sb.WriteByte(',')
						}
						fmt.Fprintf(&sb, "(%d,'row number %d',%d,'2024-05-06 07:08:09.123')", i, i, i*1000)
					}
					e.exec("INSERT INTO " + e.schema + ".t VALUES " + sb.String())
				}
				if !missing {
					e.project("t")
				}
				const chunk = 1000
				b.ResetTimer()
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
							if m.HeapAlloc > base && m.HeapAlloc-base > peak {
								peak = m.HeapAlloc - base
							}
							metrics.Read(live)
							if v := live[0].Value.Uint64(); v > liveBase && v-liveBase > peakLive {
								peakLive = v - liveBase
							}
							select {
							case <-stop:
								return
							case <-time.After(time.Millisecond):
							}
						}
					}()
					im, _ := e.redis.Image(e.schema, "t")
					st, err := Redis(context.Background(), e.rf, e.rdb, im, e.schema, "t", Options{Chunk: chunk})
					close(stop)
					wg.Wait()
					if err != nil {
						b.Fatal(err)
					}
					if st.Rows != rows || missing != (st.Missing == rows) {
						b.Fatalf("stats %v", st)
					}
				}
				b.ReportMetric(float64(peakLive)/(1<<20), "peak-live-MiB")
				b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
				b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			})
		}
	}
}
