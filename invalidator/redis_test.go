package invalidator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/rowsync/rowsync/cdc"
)

// testDB is the Redis DB index assigned to this package's tests.
const testDB = 3

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var prefixSeq atomic.Int64

// newRedis returns a client on DB 3 and a unique key prefix; keys with the
// prefix are removed at the end.
func newRedis(t testing.TB) (*goredis.Client, string) {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379", DB: testDB})
	ctx := context.Background()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("redis on 127.0.0.1:6379: %v", err)
	}
	prefix := fmt.Sprintf("invtest:%d:%d:", time.Now().UnixNano(), prefixSeq.Add(1))
	t.Cleanup(func() {
		var keys []string
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		for i := 0; i < len(keys); i += 500 {
			c.Del(ctx, keys[i:min(i+500, len(keys))]...)
		}
		c.Close()
	})
	return c, prefix
}

// newClientNoDial returns a client whose server does not exist.
func newClientNoDial(t testing.TB) *goredis.Client {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	c := goredis.NewClient(&goredis.Options{Addr: addr, DB: testDB, MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { c.Close() })
	return c
}

func usersRule(prefix string, delay time.Duration) []cdc.TableRule[TableConfig] {
	return []cdc.TableRule[TableConfig]{{
		Match: regexp.MustCompile(`^shop\.users$`),
		PK:    []string{"id"},
		Config: TableConfig{Delay: delay, Keys: []KeySpec{
			{Key: prefix + "user:{id}"},
			{Key: prefix + "user:email:{email|lower}"},
			{Key: prefix + "user:{id}:card", WhenChanged: []string{"name"}},
			{Key: prefix + "bad:{profile|json:a}"},
		}},
	}}
}

func newInvalidator(t testing.TB, c goredis.UniversalClient, cfg Config, rules []cdc.TableRule[TableConfig]) *Invalidator {
	t.Helper()
	v, err := New(c, cfg, rules, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := v.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	return v
}

// existing returns which of keys exist.
func existing(t testing.TB, c *goredis.Client, keys ...string) []string {
	t.Helper()
	var out []string
	for _, k := range keys {
		n, err := c.Exists(context.Background(), k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			out = append(out, k)
		}
	}
	return out
}

func setAll(t testing.TB, c *goredis.Client, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if err := c.Set(context.Background(), k, "cached", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestApply(t *testing.T) {
	for _, command := range []string{"", "del"} {
		t.Run("command="+command, func(t *testing.T) {
			c, p := newRedis(t)
			v := newInvalidator(t, c, Config{Command: command, BatchSize: 2}, usersRule(p, 0))
			all := []string{p + "user:1", p + "user:email:a@x", p + "user:email:b@x", p + "user:1:card",
				p + "user:2", p + "user:email:c@x", p + "user:2:card", p + "other"}
			setAll(t, c, all...)
			evs := []cdc.Event{
				// email changes: old and new email keys go; name unchanged: card stays.
				{DB: "shop", Table: "users", Op: cdc.Update,
					Before: cdc.RowOf("id", int64(1), "email", "A@x", "name", "a"),
					After:  cdc.RowOf("id", int64(1), "email", "b@x", "name", "a")},
				// other table: ignored.
				{DB: "shop", Table: "orders", Op: cdc.Delete, Before: cdc.RowOf("id", int64(2))},
				// NULL email: no email key, no error.
				{DB: "shop", Table: "users", Op: cdc.Insert, After: cdc.RowOf("id", int64(2), "email", nil, "name", "c")},
			}
			if err := v.Apply(context.Background(), evs); err != nil {
				t.Fatal(err)
			}
			want := []string{p + "user:1:card", p + "user:email:c@x", p + "other"}
			if got := existing(t, c, all...); !slices.Equal(got, want) {
				t.Errorf("left %q, want %q", got, want)
			}
			// Replaying is harmless.
			if err := v.Apply(context.Background(), evs); err != nil {
				t.Fatal(err)
			}
			if err := v.Apply(context.Background(), nil); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestApplyBatchError(t *testing.T) {
	c, p := newRedis(t)
	v := newInvalidator(t, c, Config{}, usersRule(p, 0))
	setAll(t, c, p+"user:1", p+"user:2")
	err := v.Apply(context.Background(), []cdc.Event{
		{DB: "shop", Table: "users", Op: cdc.Insert, After: cdc.RowOf("id", int64(1))},
		{DB: "shop", Table: "users", Op: cdc.Insert, After: cdc.RowOf("id", int64(2), "profile", "{not json")},
	})
	var be *cdc.BatchError
	if !errors.As(err, &be) || len(be.Failed) != 1 || be.Failed[1] == nil {
		t.Fatalf("err = %v, want BatchError for event 1", err)
	}
	if got := existing(t, c, p+"user:1", p+"user:2"); len(got) != 0 {
		t.Errorf("left %q; the failed event's other keys must still go", got)
	}
}

func TestApplyRedisDown(t *testing.T) {
	v := newInvalidator(t, newClientNoDial(t), Config{}, usersRule("x:", time.Second))
	err := v.Apply(context.Background(), []cdc.Event{
		{DB: "shop", Table: "users", Op: cdc.Insert, After: cdc.RowOf("id", int64(1))},
	})
	var be *cdc.BatchError
	if err == nil || errors.As(err, &be) {
		t.Fatalf("err = %v, want a plain (transient) error", err)
	}
	if err := v.Ping(context.Background()); err == nil {
		t.Error("Ping succeeded against nothing")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := v.Apply(ctx, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled ctx: %v", err)
	}
}

func TestWantsPing(t *testing.T) {
	c, p := newRedis(t)
	v := newInvalidator(t, c, Config{}, usersRule(p, 0))
	if !v.Wants("shop", "users") || v.Wants("shop", "orders") {
		t.Error("Wants")
	}
	if err := v.Ping(context.Background()); err != nil {
		t.Error(err)
	}
}

func TestCheckSchema(t *testing.T) {
	c, _ := newRedis(t)
	re, _ := cdc.CompileMatch(`shop\.users`)
	v := newInvalidator(t, c, Config{}, []cdc.TableRule[TableConfig]{{Match: re, Config: TableConfig{Keys: []KeySpec{
		{Key: "user:{id}"}, {Key: "user:email:{email|lower}", WhenChanged: []string{"email", "mail"}}, {Key: "row:{pk}"}}}}})
	if err := v.CheckSchema("shop", "users", []string{"id", "email", "mail"}, []string{"id"}); err != nil {
		t.Errorf("CheckSchema of a fitting table = %v", err)
	}
	err := v.CheckSchema("shop", "users", []string{"uid", "email"}, nil)
	for _, want := range []string{`keys[0]: unknown column "id"`, `keys[1].when_changed: unknown column "mail"`, `keys[2] "row:{pk}" needs {pk} but the table has no primary key`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckSchema = %v, want %q", err, want)
		}
	}
	if err := v.CheckSchema("shop", "orders", nil, nil); err != nil {
		t.Errorf("CheckSchema of an unrouted table = %v", err)
	}
}

func TestBroadcast(t *testing.T) {
	c, p := newRedis(t)
	ch := p + "invalidations"
	sub := c.Subscribe(context.Background(), ch)
	defer sub.Close()
	if _, err := sub.Receive(context.Background()); err != nil { // subscription confirmed
		t.Fatal(err)
	}
	v := newInvalidator(t, c, Config{Name: p + "q", BatchSize: 2, Poll: 5 * time.Millisecond,
		Broadcast: Broadcast{Channel: ch}}, usersRule(p, 50*time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- v.Run(ctx) }()

	err := v.Apply(context.Background(), []cdc.Event{{DB: "shop", Table: "users", Op: cdc.Update,
		Before: cdc.RowOf("id", int64(1), "email", "a@x", "name", "a"),
		After:  cdc.RowOf("id", int64(1), "email", "b@x\n"+p+"user:2", "name", "b")}})
	if err != nil {
		t.Fatal(err)
	}
	// the email holds a newline: it must not invent the key user:2
	want := []string{p + "user:1", p + "user:email:a@x", p + "user:email:b@x\n" + p + "user:2", p + "user:1:card"}
	var got []string
	// First delete and second delete: every key twice, in messages of at
	// most batch_size keys.
	for len(got) < 2*len(want) {
		msg, err := sub.ReceiveMessage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var parts []string
		if err := json.Unmarshal([]byte(msg.Payload), &parts); err != nil {
			t.Fatalf("payload %q: %v", msg.Payload, err)
		}
		if len(parts) > 2 {
			t.Errorf("message of %d keys exceeds batch_size 2", len(parts))
		}
		got = append(got, parts...)
	}
	if !slices.Equal(got[:2], want[:2]) {
		t.Errorf("first message %q, want %q", got[:2], want[:2])
	}
	slices.Sort(got)
	w := append(slices.Clone(want), want...)
	slices.Sort(w)
	if !slices.Equal(got, w) {
		t.Errorf("broadcast %q, want %q", got, w)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestDelayedDelete shows the race the second delete exists for: a stale
// value SET after the first delete is gone once the delay has passed.
func TestDelayedDelete(t *testing.T) {
	for _, m := range []struct {
		name string
		mode mode
	}{{"single", single}, {"sharded", cluster}} {
		t.Run(m.name, func(t *testing.T) {
			c, p := newRedis(t)
			v := newInvalidator(t, c, Config{Name: p + "q", Poll: 5 * time.Millisecond, BatchSize: 3}, usersRule(p, 200*time.Millisecond))
			// The sharded path (Cluster/Ring) runs against a single server
			// here: slot grouping and lease scripts work the same.
			v.mode = m.mode
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)

			var evs []cdc.Event
			var keys []string
			for i := range 10 {
				evs = append(evs, cdc.Event{DB: "shop", Table: "users", Op: cdc.Delete,
					Before: cdc.RowOf("id", int64(i), "email", fmt.Sprintf("u%d@x", i))})
				keys = append(keys, fmt.Sprintf("%suser:%d", p, i), fmt.Sprintf("%suser:email:u%d@x", p, i),
					fmt.Sprintf("%suser:%d:card", p, i))
			}
			setAll(t, c, keys...)
			start := time.Now()
			if err := v.Apply(context.Background(), evs); err != nil {
				t.Fatal(err)
			}
			if got := existing(t, c, keys...); len(got) != 0 {
				t.Fatalf("first delete left %q", got)
			}
			if n, err := v.Pending(context.Background()); err != nil || n != int64(len(keys)) {
				t.Fatalf("pending = %d, %v; want %d", n, err, len(keys))
			}
			// A slow reader puts stale values back after the first delete.
			setAll(t, c, keys...)
			// The scheduler starts only now, so the stale SETs surely
			// precede the second delete whatever the machine's load.
			go func() { done <- v.Run(ctx) }()
			waitFor(t, "second delete", func() bool {
				n, err := v.Pending(context.Background())
				return err == nil && n == 0 && len(existing(t, c, keys...)) == 0
			})
			if el := time.Since(start); el < 200*time.Millisecond {
				t.Errorf("second delete after %s, before the 200ms delay", el)
			}
			// A value SET after the second delete stays: nothing is queued.
			setAll(t, c, keys[0])
			time.Sleep(50 * time.Millisecond)
			if got := existing(t, c, keys[0]); len(got) != 1 {
				t.Errorf("fresh value deleted without a change")
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestDelayedSurvivesRestart: entries scheduled by one invalidator fire
// from another (a restart), and an expired lease of a crashed sharded pass
// is requeued.
func TestDelayedSurvivesRestart(t *testing.T) {
	c, p := newRedis(t)
	cfg := Config{Name: p + "q", Poll: 5 * time.Millisecond}
	first := newInvalidator(t, c, cfg, usersRule(p, 100*time.Millisecond))
	keys := []string{p + "user:1", p + "user:email:a@x", p + "user:1:card"}
	if err := first.Apply(context.Background(), []cdc.Event{{DB: "shop", Table: "users", Op: cdc.Delete,
		Before: cdc.RowOf("id", int64(1), "email", "a@x")}}); err != nil {
		t.Fatal(err)
	}
	// first never runs its scheduler: it "crashed". A leased key of a
	// crashed sharded pass sits in the lease set with an expired lease.
	leased := p + "user:leased"
	ctx := context.Background()
	if err := c.ZAdd(ctx, first.leases, goredis.Z{Score: float64(time.Now().Add(-time.Second).UnixMilli()), Member: leased}).Err(); err != nil {
		t.Fatal(err)
	}
	setAll(t, c, append(keys, leased)...)

	second := newInvalidator(t, c, cfg, usersRule(p, 100*time.Millisecond))
	second.mode = cluster
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- second.Run(rctx) }()
	waitFor(t, "deletes scheduled before the restart", func() bool {
		n, err := second.Pending(ctx)
		return err == nil && n == 0 && len(existing(t, c, append(keys, leased)...)) == 0
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestRunCloseAndRedisDown(t *testing.T) {
	v := newInvalidator(t, newClientNoDial(t), Config{Poll: time.Millisecond}, usersRule("x:", time.Second))
	done := make(chan error, 1)
	go func() { done <- v.Run(context.Background()) }()
	time.Sleep(100 * time.Millisecond) // let it fail a few passes
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := v.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Run without any delay just waits; Close after Run never started.
	w := newInvalidator(t, newClientNoDial(t), Config{}, usersRule("x:", 0))
	go func() { done <- w.Run(context.Background()) }()
	waitFor(t, "Run to start", func() bool { w.runMu.Lock(); defer w.runMu.Unlock(); return w.running != nil })
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := w.Run(context.Background()); err == nil {
		t.Error("second Run accepted")
	}
}

// TestBackfilledRows: a row a backfill read evicts nothing unless the
// table's rule says backfill: true.
func TestBackfilledRows(t *testing.T) {
	for _, on := range []bool{false, true} {
		t.Run(fmt.Sprintf("backfill=%v", on), func(t *testing.T) {
			c, p := newRedis(t)
			rules := []cdc.TableRule[TableConfig]{{
				Match: regexp.MustCompile(`^shop\.users$`), PK: []string{"id"},
				Config: TableConfig{Backfill: on, Keys: []KeySpec{{Key: p + "user:{id}"}}},
			}}
			v := newInvalidator(t, c, Config{}, rules)
			setAll(t, c, p+"user:1")
			ev := cdc.Event{DB: "shop", Table: "users", Op: cdc.Insert, Read: true, After: cdc.RowOf("id", int64(1))}
			if err := v.Apply(context.Background(), []cdc.Event{ev}); err != nil {
				t.Fatal(err)
			}
			var want []string
			if !on {
				want = []string{p + "user:1"}
			}
			if got := existing(t, c, p+"user:1"); !slices.Equal(got, want) {
				t.Errorf("left %q, want %q", got, want)
			}
		})
	}
}
