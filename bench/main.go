// Command bench is rowsync's end-to-end benchmark suite. It measures, each
// beside a naive consumer run on the same machine in the same run:
//
//   - throughput as a drain: N changes are written while rowsync is stopped,
//     then the real binary (built by scripts/bench.sh) is started and timed
//     until its /metrics count every change applied (binlog, Kafka
//     canal-json and RabbitMQ canal-json into Redis hashes, binlog into
//     Cache-Aside invalidation, Kafka canal-json into MongoDB documents on
//     the FerretDB stand-in);
//   - `rowsync backfill` of a 1M-row table into a running pipeline whose
//     stream carries 1,000 changes/s, beside `rowsync snapshot` of the same
//     table with the stream stopped;
//   - latency from COMMIT to cache key gone, at a fixed update rate;
//   - resident memory with a large backlog and a stalled sink;
//   - the redis-benchmark ceiling and the packages' go test microbenchmarks.
//
// It prints one table and writes it to -out. Run it through
// scripts/bench.sh (make bench); it needs the services of
// scripts/services.sh. It uses Redis DBs 11 and 12, schema rs_bench on the
// binlog MariaDB (127.0.0.1:3307), RabbitMQ queues named rs-bench-*, an
// in-process Kafka (kfake), and cleans all of them up.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/rowsync/rowsync/internal/testlock"
)

// options are the command-line settings shared by every scenario.
type options struct {
	rowsync  string // path of the rowsync binary
	work     string // scratch directory for configs, logs, checkpoints
	root     string // module root, for go test
	scale    float64
	only     map[string]bool
	latRate  int
	latDur   time.Duration
	memDur   time.Duration
	verbose  bool
	micro    bool
	log      *slog.Logger
	mysqlDSN string
	profDir  string        // write a CPU profile of every drain here ('' none)
	profDur  time.Duration // length of each drain's CPU profile
	// rabbitConsumers > 1 adds a RabbitMQ drain with that many consumers
	// (unordered: true, the canal-json workload carries no versions)
	rabbitConsumers int
	// env is the environment of every rowsync process (rowsyncEnv)
	env []string
}

func (o *options) n(base int) int { return max(1000, int(float64(base)*o.scale)) }

func (o *options) want(name string) bool { return len(o.only) == 0 || o.only[name] }

func main() {
	var o options
	var only, out string
	flag.StringVar(&o.rowsync, "rowsync", "", "rowsync binary (required)")
	flag.StringVar(&o.work, "work", "", "scratch directory (default: a new temp dir)")
	flag.StringVar(&o.root, "root", ".", "module root (for go test microbenchmarks)")
	flag.Float64Var(&o.scale, "scale", 1, "multiply every N by this (0.1 for a quick smoke run)")
	flag.StringVar(&only, "only", "", "comma list of scenarios: ceiling,binlog,kafka,refetch,rabbitmq,invalidate,mongo,backfill,latency,memory,micro")
	flag.IntVar(&o.latRate, "lat-rate", 1000, "updates/s of the latency run")
	flag.DurationVar(&o.latDur, "lat-duration", 20*time.Second, "length of each latency run")
	flag.DurationVar(&o.memDur, "mem-duration", 30*time.Second, "RSS sampling window of the memory run")
	flag.StringVar(&out, "out", "bench/results.md", "markdown results file ('' for none)")
	flag.BoolVar(&o.verbose, "v", false, "log progress details")
	flag.IntVar(&o.rabbitConsumers, "rabbit-consumers", 0, "also drain the RabbitMQ queue with this many consumers (source.rabbitmq.consumers, unordered: true); 0 or 1: not")
	flag.StringVar(&o.profDir, "cpuprofile", "", "directory for a CPU profile of each drain and a heap profile at its half (admin.pprof; go tool pprof DIR/NAME.pprof, DIR/NAME.heap.pprof)")
	flag.DurationVar(&o.profDur, "cpuprofile-duration", 10*time.Second, "length of each drain's CPU profile, from process start")
	var renv envVars
	for _, kv := range defaultRowsyncEnv {
		_ = renv.Set(kv)
	}
	flag.Var(&renv, "rowsync-env", "KEY=VALUE in rowsync's environment (repeatable; KEY= unsets). The driver's own "+
		strings.Join(runtimeVars, ", ")+" are never passed on: only this flag sets them (default GOMAXPROCS=2)")
	flag.Parse()
	var dropped []string
	o.env, dropped = rowsyncEnv(os.Environ(), &renv)
	if o.rowsync == "" {
		fmt.Fprintln(os.Stderr, "bench: -rowsync BINARY is required")
		os.Exit(2)
	}
	if only != "" {
		o.only = map[string]bool{}
		for _, s := range strings.Split(only, ",") {
			o.only[strings.TrimSpace(s)] = true
		}
	}
	level := slog.LevelInfo
	if o.verbose {
		level = slog.LevelDebug
	}
	o.log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	o.mysqlDSN = "root:@tcp(127.0.0.1:3307)/?multiStatements=true&interpolateParams=true"
	if o.work == "" {
		d, err := os.MkdirTemp("", "rowsync-bench-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		o.work = d
		defer os.RemoveAll(d)
	}

	if o.profDir != "" {
		if err := os.MkdirAll(o.profDir, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	env := envLine() + " · " + envNote(&renv, dropped)
	t := &table{}
	err := runAll(ctx, &o, t)
	t.print(os.Stdout, env)
	if out != "" {
		if f, ferr := os.Create(out); ferr == nil {
			t.markdown(f, env)
			f.Close()
			o.log.Info("results written", "file", out)
		} else {
			o.log.Error("write results", "err", ferr)
		}
	}
	if err != nil {
		o.log.Error("bench stopped early", "err", err)
		os.Exit(1)
	}
}

type scenario struct {
	name string
	run  func(ctx context.Context, o *options, t *table) error
}

func runAll(ctx context.Context, o *options, t *table) error {
	all := []scenario{
		{"ceiling", runCeiling},
		{"binlog", runBinlogDrain},
		{"kafka", runKafkaDrain},
		{"refetch", runRefetchDrains},
		{"rabbitmq", runRabbitDrain},
		{"invalidate", runInvalidateDrain},
		{"mongo", runMongoDrain},
		{"backfill", runBackfill},
		{"latency", runLatency},
		{"memory", runMemory},
		{"micro", runMicro},
	}
	var failed []string
	for _, s := range all {
		if !o.want(s.name) {
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// Two bench runs side by side (two engineers on one machine) would
		// flush each other's Redis DBs and drop each other's schema: each
		// scenario holds the suite's lock.
		release, err := benchLock(ctx, o, s.name)
		if err != nil {
			return err
		}
		start := time.Now()
		o.log.Info("scenario start", "name", s.name)
		err = s.run(ctx, o, t)
		release()
		if err != nil {
			o.log.Error("scenario failed", "name", s.name, "err", err)
			t.add(row{bench: s.name, figure: "ERROR: " + oneLine(err.Error()), pass: "fail"})
			failed = append(failed, s.name)
			continue
		}
		o.log.Info("scenario done", "name", s.name, "took", time.Since(start).Round(time.Second))
	}
	if len(failed) > 0 {
		return fmt.Errorf("scenarios failed: %s", strings.Join(failed, ", "))
	}
	return nil
}

// benchLock takes the suite's lock for one scenario, waiting for another
// run to release it; an interrupt stops the wait.
func benchLock(ctx context.Context, o *options, scenario string) (func(), error) {
	type got struct {
		release func()
		err     error
	}
	ch := make(chan got, 1)
	go func() {
		r, err := testlock.Acquire("bench", func() {
			o.log.Info("another bench run holds the suite's lock; waiting", "scenario", scenario)
		})
		ch <- got{r, err}
	}()
	select {
	case g := <-ch:
		return g.release, g.err
	case <-ctx.Done():
		go func() { // release the lock if it comes after all
			if g := <-ch; g.release != nil {
				g.release()
			}
		}()
		return nil, ctx.Err()
	}
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

// envLine describes the machine at the start of the run.
func envLine() string {
	load, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(load))
	if len(f) > 3 {
		f = f[:3]
	}
	return fmt.Sprintf("%s · nproc %d · load average at start %s · %s/%s",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.NumCPU(), strings.Join(f, " "), runtime.GOOS, runtime.GOARCH)
}

// row is one line of the results table.
type row struct {
	bench, figure, baseline, ratio, target, pass string
}

type table struct {
	rows  []row
	notes []string
}

func (t *table) add(r row) {
	t.rows = append(t.rows, r)
	fmt.Fprintf(os.Stderr, "  => %-46s %-28s base %-22s ratio %-8s target %-12s %s\n", r.bench, r.figure, r.baseline, r.ratio, r.target, r.pass)
}

func (t *table) note(format string, args ...any) {
	t.notes = append(t.notes, fmt.Sprintf(format, args...))
}

var header = row{"benchmark", "figure", "baseline", "ratio", "target", "pass/fail"}

func (t *table) print(w io.Writer, env string) {
	widths := make([]int, 6)
	all := append([]row{header}, t.rows...)
	for _, r := range all {
		for i, c := range r.cells() {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	fmt.Fprintf(w, "\nrowsync benchmarks — %s\n\n", env)
	for j, r := range all {
		for i, c := range r.cells() {
			fmt.Fprintf(w, "%-*s  ", widths[i], c)
		}
		fmt.Fprintln(w)
		if j == 0 {
			for i := range widths {
				fmt.Fprint(w, strings.Repeat("-", widths[i]), "  ")
			}
			fmt.Fprintln(w)
		}
	}
	if len(t.notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range t.notes {
			fmt.Fprintln(w, "- "+n)
		}
	}
}

func (t *table) markdown(w io.Writer, env string) {
	fmt.Fprintf(w, "# rowsync benchmark results\n\n%s\n\nProduced by `make bench` (scripts/bench.sh builds and runs the `./bench` driver). ", env)
	fmt.Fprint(w, "Throughput figures are drains: the changes are written while rowsync is stopped, then the real ")
	fmt.Fprint(w, "`rowsync run` binary is started and timed from process start until its last ack of the last change. ")
	fmt.Fprint(w, "Each baseline is a naive consumer (one round trip per row) run in the same invocation on the same data. ")
	fmt.Fprint(w, "CPU per row is the process's utime+stime (/proc/PID/stat, sampled every 25 ms by the driver) at the last ack, over the rows; ")
	fmt.Fprint(w, "peak RSS is the kernel's high-water mark (VmHWM) at the drain's end. The driver reads /metrics only for the applied count, ")
	fmt.Fprint(w, "every 50–250 ms until the first changes are applied, then a few times per drain (at most 1 s apart).\n\n")
	fmt.Fprintln(w, "| benchmark | figure | baseline | ratio | target | pass/fail |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- |")
	for _, r := range t.rows {
		c := r.cells()
		for i := range c {
			c[i] = strings.ReplaceAll(c[i], "|", "\\|")
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(c, " | "))
	}
	if len(t.notes) > 0 {
		fmt.Fprintln(w, "\nNotes:")
		fmt.Fprintln(w)
		for _, n := range t.notes {
			fmt.Fprintln(w, "- "+n)
		}
	}
}

func (r row) cells() []string {
	c := []string{r.bench, r.figure, r.baseline, r.ratio, r.target, r.pass}
	for i := range c {
		if c[i] == "" {
			c[i] = "—"
		}
	}
	return c
}

// verdict returns "pass" or "fail" for ok.
func verdict(ok bool) string {
	if ok {
		return "pass"
	}
	return "FAIL"
}

func rate(v float64, unit string) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM %s", v/1e6, unit)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk %s", v/1e3, unit)
	}
	return fmt.Sprintf("%.0f %s", v, unit)
}

func ratio(a, b float64) string {
	if b <= 0 {
		return ""
	}
	return fmt.Sprintf("%.1f×", a/b)
}
