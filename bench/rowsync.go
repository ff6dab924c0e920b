package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// proc is a running `rowsync run` subprocess.
type proc struct {
	cmd     *exec.Cmd
	admin   string // host:port of /metrics
	logPath string
	started time.Time
	done    chan error
	// heapProfile, when set, is where waitDrain writes a heap profile
	// (and HEAP.txt, the debug=1 text with the runtime's MemStats) taken
	// when half the drain is applied.
	heapProfile string
}

// startRowsync writes cfg (YAML with ADMIN as the admin address
// placeholder) to the work dir and starts the binary on it.
func startRowsync(ctx context.Context, o *options, name, cfg string) (*proc, error) {
	admin, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cfg = strings.ReplaceAll(cfg, "ADMIN", admin)
	path := filepath.Join(o.work, name+".yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	logPath := filepath.Join(o.work, name+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(o.rowsync, "run", "-c", path)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Env = o.env
	p := &proc{cmd: cmd, admin: admin, logPath: logPath, done: make(chan error, 1)}
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start rowsync: %w", err)
	}
	go func() { p.done <- cmd.Wait(); lf.Close() }()
	o.log.Debug("rowsync started", "pid", cmd.Process.Pid, "config", path, "log", logPath)
	return p, nil
}

// stop sends SIGTERM and waits (SIGKILL after 20s).
func (p *proc) stop() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.done <- nil // later stops return at once
}

// tail returns the last lines of the log, for error messages.
func (p *proc) tail() string {
	b, _ := os.ReadFile(p.logPath)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.Join(lines, " ⏎ ")
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case err := <-p.done:
		p.done <- err
		return true
	default:
		return false
	}
}

// metrics is what the bench reads from /metrics.
type metrics struct {
	events   float64 // sum of rowsync_events_total
	lastAck  float64 // rowsync_pipeline_last_ack_timestamp_seconds
	errors   float64 // sum of rowsync_errors_total
	inFlight float64 // rowsync_pipeline_inflight_batches
}

// httpClient reads /metrics uncompressed: the drains poll it every
// pollEvery, and gzip made those scrapes a visible share of rowsync's CPU
// per row (a fifth of a slow RabbitMQ drain's profile).
var httpClient = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableCompression: true}}

// pollEvery is how often a drain reads /metrics and the RSS. The drain's
// end is the pipeline's own last-ack timestamp, so it needs no finer poll.
const pollEvery = 50 * time.Millisecond

func (p *proc) metrics(ctx context.Context) (metrics, error) {
	var m metrics
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.admin+"/metrics", nil)
	resp, err := httpClient.Do(req)
	if err != nil {
		return m, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		switch {
		case strings.HasPrefix(line, "rowsync_events_total{"):
			m.events += v
		case strings.HasPrefix(line, "rowsync_pipeline_last_ack_timestamp_seconds{"):
			m.lastAck = max(m.lastAck, v)
		case strings.HasPrefix(line, "rowsync_errors_total{"):
			m.errors += v
		case strings.HasPrefix(line, "rowsync_pipeline_inflight_batches{"):
			m.inFlight += v
		}
	}
	return m, sc.Err()
}

// drainResult times one drain.
type drainResult struct {
	events    float64
	total     time.Duration // process start → last ack
	startup   time.Duration // process start → first events applied (observed)
	steadyRPS float64       // events after the first observed / time after it
	maxRSS    int64         // largest VmRSS seen while polling
	cpu       time.Duration // rowsync's CPU time when the drain ended
}

func (d drainResult) rps() float64 { return d.events / d.total.Seconds() }

// waitDrain polls /metrics until want events were applied, then returns
// the timing. The end is the pipeline's own last-ack timestamp, so the
// polling interval does not blur it.
func (p *proc) waitDrain(ctx context.Context, want int, timeout time.Duration) (drainResult, error) {
	var r drainResult
	deadline := time.Now().Add(timeout)
	var firstAt time.Time
	var firstN float64
	heap := p.heapProfile
	var heapDone chan struct{}
	for {
		if ctx.Err() != nil {
			return r, ctx.Err()
		}
		if p.exited() {
			return r, fmt.Errorf("rowsync exited: %s", p.tail())
		}
		if b, err := rss(p.cmd.Process.Pid); err == nil {
			r.maxRSS = max(r.maxRSS, b)
		}
		m, err := p.metrics(ctx)
		now := time.Now()
		if err == nil {
			if m.events > 0 && firstAt.IsZero() {
				firstAt, firstN = now, m.events
			}
			if heap != "" && m.events >= float64(want)/2 {
				heapDone = make(chan struct{})
				go func(path string) { defer close(heapDone); p.heapProfiles(ctx, path) }(heap)
				heap = ""
			}
			if m.events >= float64(want) {
				end := time.Unix(0, int64(m.lastAck*1e9))
				if end.Before(p.started) || end.After(now) {
					end = now
				}
				r.events = m.events
				r.cpu = cpuTime(p.cmd.Process.Pid)
				r.total = end.Sub(p.started)
				r.startup = firstAt.Sub(p.started)
				if d := end.Sub(firstAt); d > 0 {
					r.steadyRPS = (m.events - firstN) / d.Seconds()
				}
				if heapDone != nil {
					<-heapDone // the figures above were taken first
				}
				return r, nil
			}
		}
		if now.After(deadline) {
			return r, fmt.Errorf("drain timed out after %s: %.0f of %d events applied (errors %v); log: %s",
				timeout, m.events, want, m.errors, p.tail())
		}
		time.Sleep(pollEvery)
	}
}

// rss returns the VmRSS of pid in bytes.
func rss(pid int) (int64, error) { return procStatus(pid, "VmRSS:") }

// procStatus returns a kB field of /proc/PID/status ("VmRSS:") in bytes.
func procStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				break
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no " + strings.TrimSuffix(field, ":"))
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Redis DBs this suite owns; FLUSHDB is allowed on them only.
const (
	sinkDB  = 11
	cacheDB = 12
)

func redisDB(db int) *goredis.Client {
	return goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379", DB: db, PoolSize: 4,
		ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second})
}

// flush empties one of the suite's own DBs.
func flush(ctx context.Context, db int) error {
	if db != sinkDB && db != cacheDB {
		return fmt.Errorf("refusing to flush DB %d", db)
	}
	c := redisDB(db)
	defer c.Close()
	return c.FlushDB(ctx).Err()
}

// waitDBSize polls DBSIZE until it equals want (a sink may ack before a
// read of another connection sees it only in theory; this is the check
// that the drain really produced the expected state).
func waitDBSize(ctx context.Context, c *goredis.Client, want int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		n, err := c.DBSize(ctx).Result()
		if err == nil && n == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis DB holds %d keys, want %d (err %v)", n, want, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/1e6) }

// cpuTime returns the user+system CPU time pid has used.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * 10 * time.Millisecond // USER_HZ = 100
}

// redisPID returns the process id of the Redis on 6379 (this machine).
func redisPID(ctx context.Context) int {
	c := redisDB(sinkDB)
	defer c.Close()
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}

// cpuNote describes the CPU per row that rowsync and redis-server spent
// over a drain of n rows.
func cpuNote(rowsyncCPU, redisCPU time.Duration, n int) string {
	return fmt.Sprintf("CPU per row: rowsync %.1f µs, redis-server %.1f µs",
		float64(rowsyncCPU)/float64(n)/1e3, float64(redisCPU)/float64(n)/1e3)
}

// timedDrain starts rowsync with cfg, waits until it has acked n changes,
// stops it, and returns the drain figures with the Redis server's CPU time
// spent meanwhile.
func timedDrain(ctx context.Context, o *options, name, cfg string, n int) (drainResult, time.Duration, error) {
	rpid := redisPID(ctx)
	redis0 := cpuTime(rpid)
	if o.profDir != "" {
		cfg = strings.Replace(cfg, "  addr: ADMIN\n", "  addr: ADMIN\n  pprof: true\n", 1)
	}
	p, err := startRowsync(ctx, o, name, cfg)
	if err != nil {
		return drainResult{}, 0, err
	}
	if o.profDir != "" {
		p.heapProfile = filepath.Join(o.profDir, name+".heap.pprof")
	}
	var prof chan error
	if o.profDir != "" {
		prof = make(chan error, 1)
		go func() { prof <- p.cpuProfile(ctx, filepath.Join(o.profDir, name+".pprof"), o.profDur) }()
	}
	res, err := p.waitDrain(ctx, n, 3*time.Minute)
	redisCPU := cpuTime(rpid) - redis0
	if prof != nil {
		if perr := <-prof; perr != nil {
			o.log.Warn("cpu profile", "drain", name, "err", perr)
		} else {
			o.log.Info("cpu profile written", "file", filepath.Join(o.profDir, name+".pprof"))
		}
	}
	p.stop()
	return res, redisCPU, err
}

// heapProfiles writes the process's heap profile to path and its
// debug=1 text (with the runtime's MemStats) to path.txt. Failures are
// logged only: profiles are an aid, not a figure.
func (p *proc) heapProfiles(ctx context.Context, path string) {
	c := &http.Client{Timeout: 30 * time.Second}
	for _, q := range []struct{ query, file string }{{"", path}, {"?debug=1", path + ".txt"}} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.admin+"/debug/pprof/heap"+q.query, nil)
		resp, err := c.Do(req)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: heap profile:", err)
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			err = os.WriteFile(q.file, b, 0o644)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: heap profile:", err)
		}
	}
}

// histogram returns the count and sum of the histogram name on /metrics
// (all label sets together).
func (p *proc) histogram(ctx context.Context, name string) (count, sum float64, err error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.admin+"/metrics", nil)
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		i := strings.LastIndexByte(line, ' ')
		if i < 0 || strings.HasPrefix(line, "#") {
			continue
		}
		v, perr := strconv.ParseFloat(line[i+1:], 64)
		if perr != nil {
			continue
		}
		switch {
		case strings.HasPrefix(line, name+"_count"):
			count += v
		case strings.HasPrefix(line, name+"_sum"):
			sum += v
		}
	}
	return count, sum, sc.Err()
}

// cpuProfile takes a CPU profile of d from the process's admin port
// (admin.pprof) as soon as it answers, and writes it to path. A drain
// shorter than d leaves the process idle for the rest: idle adds few
// samples, so the profile is the drain's.
func (p *proc) cpuProfile(ctx context.Context, path string, d time.Duration) error {
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", p.admin, int(d.Seconds()))
	c := &http.Client{Timeout: d + 30*time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := c.Do(req)
		if err != nil {
			if time.Now().After(deadline) || ctx.Err() != nil || p.exited() {
				return err
			}
			time.Sleep(5 * time.Millisecond)
			continue
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", url, resp.Status)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		return os.WriteFile(path, b, 0o644)
	}
}

// checkHashes checks a drain's end state: live hashes of rs_bench.items in
// the sink DB and the first item's fields. Only the table's keys count:
// rowsync keeps its own state there too (a Kafka pipeline with mysql:
// has its backfill hash, rowsync:checkpoint:NAME:backfill).
func checkHashes(ctx context.Context, rc *goredis.Client, live int) error {
	if err := waitKeys(ctx, rc, benchSchema+"_items_*", int64(live), 30*time.Second); err != nil {
		return fmt.Errorf("after the rowsync drain: %w", err)
	}
	return checkItem(ctx, rc, 0)
}

// waitKeys polls until the keys matching pattern number want.
func waitKeys(ctx context.Context, c *goredis.Client, pattern string, want int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var n int64
		iter := c.Scan(ctx, 0, pattern, 10000).Iterator()
		for iter.Next(ctx) {
			n++
		}
		err := iter.Err()
		if err == nil && n == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis DB holds %d keys %s, want %d (err %v)", n, pattern, want, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
