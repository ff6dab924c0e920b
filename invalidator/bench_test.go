package invalidator

import (
	"context"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/rowsync/rowsync/cdc"
)

// BenchmarkInvalidate measures keys deleted per second: Apply with 500-event
// batches (2 keys per event: by id and by email; rendering included), with
// and without the delayed-delete ZADD, against a naive loop that sends one
// DEL per key. Run: go test -run '^$' -bench Invalidate ./invalidator/
func BenchmarkInvalidate(b *testing.B) {
	const batch = 500
	mkEvents := func(n int) []cdc.Event {
		evs := make([]cdc.Event, n)
		for i := range evs {
			evs[i] = cdc.Event{DB: "shop", Table: "users", Op: cdc.Update, PK: []string{"id"},
				Before: cdc.RowOf("id", int64(i), "email", fmt.Sprintf("U%d@x.org", i), "name", "a"),
				After:  cdc.RowOf("id", int64(i), "email", fmt.Sprintf("U%d@x.org", i), "name", "b")}
		}
		return evs
	}
	rules := func(prefix string, delay time.Duration) []cdc.TableRule[TableConfig] {
		return []cdc.TableRule[TableConfig]{{
			Match: regexp.MustCompile(`^shop\.users$`),
			Config: TableConfig{Delay: delay, Keys: []KeySpec{
				{Key: prefix + "user:{id}"}, {Key: prefix + "user:email:{email|lower}"}}},
		}}
	}
	for _, tc := range []struct {
		name  string
		delay time.Duration
	}{{"invalidator", 0}, {"invalidator+delay", time.Hour}} {
		b.Run(tc.name, func(b *testing.B) {
			c, p := newRedis(b)
			v, err := New(c, Config{Name: p + "q"}, rules(p, tc.delay), nil)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			defer c.Del(ctx, v.queue)
			evs := mkEvents(batch)
			b.ResetTimer()
			keys := 0
			for i := 0; i < b.N; i += batch {
				n := min(batch, b.N-i)
				if err := v.Apply(ctx, evs[:n]); err != nil {
					b.Fatal(err)
				}
				keys += 2 * n
			}
			b.ReportMetric(float64(keys)/b.Elapsed().Seconds(), "keys/s")
		})
	}
	b.Run("naive-del-per-key", func(b *testing.B) {
		c, p := newRedis(b)
		ctx := context.Background()
		keys := 0
		for i := 0; i < b.N; i++ {
			for _, k := range []string{fmt.Sprintf("%suser:%d", p, i%batch), fmt.Sprintf("%suser:email:u%d@x.org", p, i%batch)} {
				if err := c.Del(ctx, k).Err(); err != nil {
					b.Fatal(err)
				}
				keys++
			}
		}
		b.ReportMetric(float64(keys)/b.Elapsed().Seconds(), "keys/s")
	})
}
