package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// proc is a running `rowsync run` subprocess.
type proc struct {
	cmd     *exec.Cmd
	admin   string // host:port of /metrics
	logPath string
	log     *slog.Logger
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
	p := &proc{cmd: cmd, admin: admin, logPath: logPath, log: o.log, done: make(chan error, 1)}
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

// httpClient reads /metrics uncompressed: gzip made the scrapes a visible
// share of rowsync's CPU per row (a fifth of a slow RabbitMQ drain's
// profile when the drains polled every 50 ms).
var httpClient = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableCompression: true}}

// A scrape of /metrics costs rowsync about 1.5 ms of CPU (its process
// collector reads /proc/self, the Go collector the runtime's metrics):
// polled every 50 ms that was 3-10% of a slow drain's CPU samples. So a
// drain reads /metrics only for the count it waits on, as seldom as the
// figures allow, and everything else from /proc in the driver (which
// costs rowsync nothing: the kernel does the work in the reader):
//
//   - until the first changes are applied, every startupPoll(elapsed):
//     50 ms, longer as the start drags on (a tenth of the time so far, at
//     most 250 ms), so the startup figure keeps a tenth of its own size;
//   - then at the time the rate so far says the target count (the drain's
//     end, or its half for a heap profile) is reached, between 50 ms and
//     1 s: a few scrapes per drain, about one a second on slow ones;
//   - once the count is reached, every settlePoll until the last batch is
//     acked (settled).
//
// The end is the pipeline's own last-ack timestamp and the CPU is read
// at that instant from a series sampled every cpuEvery (cpuSeries), so
// neither depends on when a poll noticed the end.
const (
	startupPollMin = 50 * time.Millisecond
	startupPollMax = 250 * time.Millisecond
	drainPollMin   = 50 * time.Millisecond
	drainPollMax   = time.Second
	settlePoll     = 20 * time.Millisecond
	cpuEvery       = 25 * time.Millisecond
	// settleMax ends the wait for the last ack when batches keep coming
	// after the count was reached (a stream beside the drain)
	settleMax = 5 * time.Second
)

// startupPoll is the wait between scrapes before the first changes are
// applied, elapsed after the process started.
func startupPoll(elapsed time.Duration) time.Duration {
	return min(startupPollMax, max(startupPollMin, elapsed/10))
}

// drainPoll is the wait between scrapes while changes flow: until the
// count reaches target at the rate seen since (firstAt, firstN).
func drainPoll(now, firstAt time.Time, firstN, events, target float64) time.Duration {
	d := now.Sub(firstAt)
	if d <= 0 || events <= firstN {
		return startupPollMax
	}
	rate := (events - firstN) / d.Seconds()
	eta := time.Duration((target - events) / rate * float64(time.Second))
	return min(drainPollMax, max(drainPollMin, eta))
}

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
	end       time.Time     // the last ack (the pipeline's timestamp)
	total     time.Duration // process start → last ack
	startup   time.Duration // process start → first events applied (observed)
	steadyRPS float64       // events after the first observed / time after it
	peakRSS   int64         // VmHWM when the drain ended: the process's peak (since resetHWM)
	cpu       time.Duration // rowsync's CPU time at the last ack
}

func (d drainResult) rps() float64 { return d.events / d.total.Seconds() }

// waitDrain polls /metrics (see startupPoll) until want events were
// applied and acked, then returns the timing. The drain ends at the
// pipeline's own timestamp of its last ack; the CPU is read from a series
// sampled beside the polls, at that timestamp.
func (p *proc) waitDrain(ctx context.Context, want int, timeout time.Duration) (drainResult, error) {
	var r drainResult
	pid := p.cmd.Process.Pid
	cpu := sampleCPU(pid, p.started)
	defer cpu.close()
	deadline := time.Now().Add(timeout)
	var firstAt, reachedAt time.Time
	var firstN float64
	var last metrics // the previous scrape, once the count was reached
	scrapes := 0
	heap := p.heapProfile
	var heapDone chan struct{}
	for {
		if ctx.Err() != nil {
			return r, ctx.Err()
		}
		if p.exited() {
			return r, fmt.Errorf("rowsync exited: %s", p.tail())
		}
		m, err := p.metrics(ctx)
		scrapes++
		now := time.Now()
		wait := startupPoll(now.Sub(p.started))
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
				if reachedAt.IsZero() {
					reachedAt = now
				}
				// Settled: nothing in flight and no ack since the previous
				// scrape (the gauges are set one after the other, so one
				// scrape may fall between them).
				settled := last.lastAck > 0 && m.lastAck == last.lastAck && m.inFlight == 0
				if settled || now.Sub(reachedAt) > settleMax {
					if !settled {
						p.log.Info("drain: batches still in flight or acked after the count was reached; ends at the last ack seen",
							"in_flight", m.inFlight, "events", m.events, "want", want)
					}
					r.end = time.Unix(0, int64(m.lastAck*1e9))
					if r.end.Before(p.started) || r.end.After(now) {
						r.end = now
					}
					r.events = m.events
					r.cpu = cpu.at(r.end)
					r.peakRSS = vmHWM(pid)
					r.total = r.end.Sub(p.started)
					r.startup = firstAt.Sub(p.started)
					if d := r.end.Sub(firstAt); d > 0 {
						r.steadyRPS = (m.events - firstN) / d.Seconds()
					}
					if heapDone != nil {
						<-heapDone // the figures above were taken first
					}
					p.log.Debug("drain ended", "scrapes", scrapes, "noticed_after_end", now.Sub(r.end).Round(time.Millisecond),
						"settle", now.Sub(reachedAt).Round(time.Millisecond), "cpu_at_end", r.cpu, "cpu_now", cpuTime(pid))
					return r, nil
				}
				last = m
				wait = settlePoll
			} else if !firstAt.IsZero() {
				target := float64(want)
				if heap != "" {
					target /= 2
				}
				wait = drainPoll(now, firstAt, firstN, m.events, target)
			}
		}
		if now.After(deadline) {
			return r, fmt.Errorf("drain timed out after %s: %.0f of %d events applied (errors %v); log: %s",
				timeout, m.events, want, m.errors, p.tail())
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
		}
	}
}

// cpuSeries samples the CPU time of a process (cpuTime) every cpuEvery
// in the driver, so that a figure can be read at an instant that is
// known only afterwards (a drain's last ack), to within a sample.
type cpuSeries struct {
	pid  int
	mu   sync.Mutex
	pts  []cpuPoint
	stop chan struct{}
	done chan struct{}
}

type cpuPoint struct {
	at  time.Time
	cpu time.Duration
}

// sampleCPU starts a series of pid; a non-zero started adds the point
// (started, 0): the CPU time of a process at its start.
func sampleCPU(pid int, started time.Time) *cpuSeries {
	s := &cpuSeries{pid: pid, stop: make(chan struct{}), done: make(chan struct{})}
	if !started.IsZero() {
		s.pts = append(s.pts, cpuPoint{started, 0})
	}
	s.sample()
	go func() {
		defer close(s.done)
		t := time.NewTicker(cpuEvery)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				s.sample()
			case <-s.stop:
				return
			}
		}
	}()
	return s
}

func (s *cpuSeries) sample() {
	c, err := procCPU(s.pid)
	at := time.Now()
	if err != nil {
		return
	}
	s.mu.Lock()
	s.pts = append(s.pts, cpuPoint{at, c})
	s.mu.Unlock()
}

func (s *cpuSeries) close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

// at returns the CPU time at t, interpolated between the samples around
// it (after a fresh sample, when t is later than the last one).
func (s *cpuSeries) at(t time.Time) time.Duration {
	s.mu.Lock()
	fresh := len(s.pts) == 0 || s.pts[len(s.pts)-1].at.Before(t)
	s.mu.Unlock()
	if fresh {
		s.sample()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return interpolate(s.pts, t)
}

// interpolate returns the value of the series pts (in time order) at t:
// linear between the points around t, the first or last point outside.
func interpolate(pts []cpuPoint, t time.Time) time.Duration {
	if len(pts) == 0 {
		return 0
	}
	i := sort.Search(len(pts), func(i int) bool { return !pts[i].at.Before(t) })
	switch {
	case i == 0:
		return pts[0].cpu
	case i == len(pts):
		return pts[len(pts)-1].cpu
	}
	a, b := pts[i-1], pts[i]
	f := float64(t.Sub(a.at)) / float64(b.at.Sub(a.at))
	return a.cpu + time.Duration(f*float64(b.cpu-a.cpu))
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

// pooledRate is the rate of runs of the same number of messages taken
// together: all the messages over all the time, the harmonic mean of
// their rates (their plain mean overstates it: 17.4k and 35.4k msgs/s
// are 23.3k together, not 26.4k).
func pooledRate(rates ...float64) float64 {
	var inv float64
	for _, r := range rates {
		if r <= 0 {
			return 0
		}
		inv += 1 / r
	}
	if inv == 0 {
		return 0
	}
	return float64(len(rates)) / inv
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/1e6) }

// cpuTime returns the user+system CPU time pid has used (0 if unknown).
func cpuTime(pid int) time.Duration {
	c, _ := procCPU(pid)
	return c
}

// procCPU returns the user+system CPU time of pid's threads from
// /proc/PID/stat (utime, stime: the kernel's precise runtime, in 10 ms
// clock ticks).
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return time.Duration(u+st) * 10 * time.Millisecond, nil // USER_HZ = 100
}

// vmHWM returns the peak resident set of pid in bytes (0 if unknown):
// the kernel's high-water mark since the start or the last resetHWM.
func vmHWM(pid int) int64 {
	b, _ := procStatus(pid, "VmHWM:")
	return b
}

// resetHWM sets pid's VmHWM to its current RSS (/proc/PID/clear_refs,
// Linux 4.0+), so that a later vmHWM is the peak of what came after.
func resetHWM(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
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
	redis0 := time.Now()
	redis := sampleCPU(redisPID(ctx), time.Time{})
	defer redis.close()
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
	var redisCPU time.Duration
	if err == nil {
		redisCPU = redis.at(res.end) - redis.at(redis0)
	}
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
