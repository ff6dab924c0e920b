// Package e2e holds rowsync's end-to-end tests: the real binary, run as a
// subprocess with a generated config, against real services (Redis,
// RabbitMQ) and an in-process Kafka (kfake), fed with messages that
// internal/changegen encodes, checked against the exact end state.
package e2e

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/rowsync/rowsync/internal/testlock"
)

var long = flag.Bool("long", os.Getenv("ROWSYNC_LONG") == "1", "run the long soak (100k messages, full RabbitMQ restart)")

// Redis DB indexes owned by this package (FLUSHDB allowed there only).
const (
	kafkaDB  = 13
	rabbitDB = 14
)

var (
	repoRoot string
	binary   string // the rowsync binary built by TestMain
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	_, file, _, _ := runtime.Caller(0)
	repoRoot = filepath.Dir(filepath.Dir(file))
	svc := exec.Command("bash", "scripts/services.sh")
	svc.Dir = repoRoot
	svc.Env = append(os.Environ(), "ROWSYNC_SKIP_FERRETDB=1")
	if out, err := svc.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: scripts/services.sh: %v\n%s", err, out)
		return 1
	}
	dir, err := os.MkdirTemp("", "rowsync-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "rowsync")
	build := exec.Command("go", "build", "-o", binary, "./cmd/rowsync")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// size picks the default or the -long message count.
func size(def, longN int) int {
	if *long {
		return longN
	}
	return def
}

// redisDB returns a client of db, flushed before the test and after. The
// test holds db's lock meanwhile, so a test run beside this one (a second
// `make test`) does not flush it under the test.
func redisDB(t *testing.T, db int) *goredis.Client {
	t.Helper()
	release, err := testlock.Acquire(fmt.Sprintf("redis-db-%d", db), func() {
		t.Logf("waiting for another test process to finish with Redis DB %d", db)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(release) // after the flush below: cleanups run last-registered first
	c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379", DB: db})
	ctx := context.Background()
	if err := c.FlushDB(ctx).Err(); err != nil {
		t.Fatalf("redis flushdb %d: %v", db, err)
	}
	t.Cleanup(func() {
		c.FlushDB(context.Background())
		c.Close()
	})
	return c
}

// proc is one rowsync subprocess.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// rowsync runs `rowsync run -c cfg` with output appended to logPath. The
// process is killed when the test ends; its log is printed if it failed.
func rowsync(t *testing.T, cfg, logPath string) *proc {
	t.Helper()
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(lf, "=== rowsync run -c %s (%s)\n", cfg, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(binary, "run", "-c", cfg)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Dir = filepath.Dir(cfg)
	if err := cmd.Start(); err != nil {
		lf.Close()
		t.Fatalf("start rowsync: %v", err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		lf.Close()
		close(p.done)
	}()
	t.Cleanup(func() { p.kill() })
	return p
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM and waits up to a minute, then kills.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		t.Errorf("rowsync did not stop within a minute of SIGTERM")
		p.kill()
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// showLogOnFailure prints the subprocess log when the test fails.
func showLogOnFailure(t *testing.T, logPath string) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		b, err := os.ReadFile(logPath)
		if err != nil {
			t.Logf("rowsync log: %v", err)
			return
		}
		const max = 20000
		if len(b) > max {
			b = append([]byte("...\n"), b[len(b)-max:]...)
		}
		t.Logf("rowsync log %s:\n%s", logPath, b)
	})
}

// scanKeys returns every key matching prefix*.
func scanKeys(ctx context.Context, rdb *goredis.Client, prefix string) ([]string, error) {
	var keys []string
	iter := rdb.Scan(ctx, 0, prefix+"*", 2000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	return keys, iter.Err()
}

// diffState compares Redis under prefix with want and describes up to a
// few differences; "" means equal.
func diffState(ctx context.Context, rdb *goredis.Client, prefix string, want map[string]map[string]string) (string, error) {
	keys, err := scanKeys(ctx, rdb, prefix)
	if err != nil {
		return "", err
	}
	var diffs []string
	note := func(f string, args ...any) {
		if len(diffs) < 8 {
			diffs = append(diffs, fmt.Sprintf(f, args...))
		} else if len(diffs) == 8 {
			diffs = append(diffs, "...")
		}
	}
	for _, k := range keys {
		if _, ok := want[k]; !ok {
			note("extra key %s", k)
		}
	}
	names := make([]string, 0, len(want))
	for k := range want {
		names = append(names, k)
	}
	slices.Sort(names)
	var missing, wrong int
	for len(names) > 0 {
		chunk := names[:min(len(names), 1000)]
		names = names[len(chunk):]
		pipe := rdb.Pipeline()
		cmds := make([]*goredis.MapStringStringCmd, len(chunk))
		for i, k := range chunk {
			cmds[i] = pipe.HGetAll(ctx, k)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return "", err
		}
		for i, k := range chunk {
			got := cmds[i].Val()
			w := want[k]
			if len(got) == 0 {
				missing++
				note("missing key %s", k)
				continue
			}
			if !mapsEqual(got, w) {
				wrong++
				note("key %s: got %q, want %q", k, got, w)
			}
		}
	}
	if len(diffs) == 0 {
		return "", nil
	}
	return fmt.Sprintf("%d keys in redis, %d expected, %d missing, %d differ:\n  %s",
		len(keys), len(want), missing, wrong, strings.Join(diffs, "\n  ")), nil
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// waitState polls until Redis under prefix equals want exactly, or fails
// after timeout with the last difference. p, if set, must keep running.
func waitState(t *testing.T, rdb *goredis.Client, prefix string, want map[string]map[string]string, timeout time.Duration, p *proc) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		d, err := diffState(ctx, rdb, prefix, want)
		if err != nil {
			last = "redis: " + err.Error()
		} else if d == "" {
			return
		} else {
			last = d
		}
		if p != nil && p.exited() {
			t.Fatalf("rowsync exited (%v) before the end state was reached; last diff: %s", p.err, last)
		}
		if time.Now().After(deadline) {
			t.Fatalf("end state not reached within %v: %s", timeout, last)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// waitFor polls cond until true or fails after timeout.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, info := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v (%s)", what, timeout, info)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// writeFile writes a test file and returns its path.
func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// rabbitmqctl runs rabbitmqctl with args (one at a time: each call starts
// an Erlang VM, and concurrent stop/start would race).
var ctlMu sync.Mutex

func rabbitmqctl(args ...string) (string, error) {
	ctlMu.Lock()
	defer ctlMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "rabbitmqctl", args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}
