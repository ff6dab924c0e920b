package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/config"
	"github.com/rowsync/rowsync/deadletter"
	"github.com/rowsync/rowsync/internal/secret"
	"github.com/rowsync/rowsync/lease"
	"github.com/rowsync/rowsync/metrics"
	"github.com/rowsync/rowsync/pipeline"
	"github.com/rowsync/rowsync/refetch"
	"github.com/rowsync/rowsync/source/binlog"
	"github.com/rowsync/rowsync/source/decode"
)

// loadConfig parses -c/--config and loads the file; on any problem it
// prints every error and returns exitConfig, before anything connects.
func loadConfig(name string, args []string, stderr io.Writer, extra func(*flag.FlagSet)) (*config.Config, *flag.FlagSet, int) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "", "config file (YAML)")
	fs.StringVar(path, "config", "", "config file (YAML)")
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return nil, nil, exitConfig
	}
	if *path == "" {
		fmt.Fprintf(stderr, "rowsync %s: -c FILE is required\n", name)
		return nil, nil, exitConfig
	}
	cfg, err := config.Load(*path, registry())
	if err != nil {
		fmt.Fprintf(stderr, "rowsync: invalid config %s:\n", *path)
		for _, line := range strings.Split(secret.Redact(err.Error()), "\n") {
			fmt.Fprintf(stderr, "  %s\n", line)
		}
		return nil, nil, exitConfig
	}
	return cfg, fs, exitOK
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	switch strings.ToLower(c.Level) {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func cmdRun(args []string, stderr io.Writer) int {
	cfg, _, code := loadConfig("run", args, stderr, nil)
	if cfg == nil {
		return code
	}
	log := scrubbedLogger(cfg, stderr)
	for _, w := range plaintextWarnings(cfg) {
		log.Warn(w)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, log); err != nil {
		var se schemaError
		if errors.As(err, &se) {
			fmt.Fprintln(stderr, "rowsync: the tables do not fit the config:")
			for _, line := range strings.Split(se.err.Error(), "\n") {
				fmt.Fprintf(stderr, "  %s\n", line)
			}
			return exitConfig
		}
		log.Error("rowsync stopped", "err", err)
		return exitFail
	}
	log.Info("rowsync stopped cleanly")
	return exitOK
}

// run wires the configured source, sinks and pipeline and runs them until
// ctx ends (a clean stop: in-flight work is applied and acked) or a fatal
// error.
func run(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	base := log // the pipeline adds the pipeline attribute itself
	log = log.With("pipeline", cfg.Name)
	setGC(cfg.Pipeline, log)
	m := metrics.New()
	d, err := newDeps(cfg, log)
	if err != nil {
		return err
	}
	defer d.close()

	if b, ok := d.sourceBlock().(binlog.Config); ok {
		if err := b.Ready(ctx); err != nil {
			return fmt.Errorf("source.binlog %s: %w", b.Addr, err)
		}
	}
	routes, err := buildRoutes(ctx, d, nil)
	if err != nil {
		return err
	}
	defer closeRoutes(routes, log)
	if err := checkSchemasOnce(ctx, cfg, routes); err != nil {
		return err
	}
	var held *lease.Lease
	if lc, ok := config.Block[lease.Config](cfg, "lease"); ok {
		held = lease.New(d.redis, lc, cfg.Name, log)
		if err := held.Acquire(ctx); err != nil {
			if ctx.Err() != nil {
				return nil // stopped while standing by
			}
			return err
		}
	}
	src, err := newSource(ctx, d)
	if err != nil {
		return err
	}
	// Closing the source saves its final checkpoint. It runs once: at the
	// end of the pipeline, before the lease is released (so a standby
	// starts from it), or here on an early error.
	closeSource := sync.OnceValue(func() error {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return src.Close(cctx)
	})
	defer closeSource()

	// Components that count their own things (reconnects, rebalances,
	// checkpoint-save failures, backlogs) register on the one registry.
	if in, ok := src.(metrics.Instrumented); ok {
		in.Instrument(m)
	}
	if in, ok := d.schemas.(metrics.Instrumented); ok {
		in.Instrument(m)
	}
	d.ddl.Instrument(m)
	for _, r := range routes {
		if in, ok := r.Sink.(metrics.Instrumented); ok {
			in.Instrument(m)
		}
	}
	owner := ""
	if held != nil {
		owner = held.Owner()
	}
	src, bf, closeBackfill, err := runBackfills(d, src, routes, owner, m, log)
	if err != nil {
		return err
	}
	defer closeBackfill()

	dl, err := openDeadLetter(cfg)
	if err != nil {
		return err
	}
	defer dl.Close()

	opts := pipelineOptions(d, dl, m, base)
	if rc, ok := config.Block[refetch.Config](cfg, "mysql"); ok {
		rf, err := refetch.New(rc, log.With("stage", "refetch"))
		if err != nil {
			return err
		}
		defer rf.Close()
		opts.Refetch, opts.RefetchTable = rf, d.router.Refetch
	}
	p, err := pipeline.New(src, routes, opts)
	if err != nil {
		return err
	}

	g, gctx := errgroup.WithContext(ctx)
	runnersCtx, stopRunners := context.WithCancel(gctx)
	defer stopRunners()
	if addr := cfg.Admin.Address(); addr != "" {
		srv, err := adminServer(addr, cfg.Admin.Pprof, p, routes, m)
		if err != nil {
			return err
		}
		g.Go(func() error {
			<-runnersCtx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			return srv.Shutdown(sctx)
		})
		log.Info("admin listening", "addr", addr)
	}
	if held != nil {
		// Losing the lease stops the pipeline: a standby has taken over.
		g.Go(func() error { return held.Keep(runnersCtx) })
	}
	if bf != nil {
		g.Go(func() error { return bf.Run(runnersCtx) })
	}
	for _, r := range routes {
		if rn, ok := r.Sink.(cdc.Runner); ok {
			g.Go(func() error { return rn.Run(runnersCtx) })
		}
	}
	g.Go(func() error {
		defer stopRunners() // releases the lease: after the final checkpoint
		err := p.Run(gctx)
		if cerr := closeSource(); cerr != nil {
			log.Error("final checkpoint not saved; the changes since the last one are replayed on restart", "err", cerr)
			err = errors.Join(err, fmt.Errorf("close source (final checkpoint): %w", cerr))
		}
		return err
	})
	log.Info("rowsync running", "source", cfg.Source, "sinks", len(routes))
	return g.Wait()
}

// adminServer serves /healthz, /readyz and /metrics on addr.
func adminServer(addr string, withPprof bool, p *pipeline.Pipeline, routes []pipeline.Route, m *metrics.Metrics) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin.addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := readiness(r.Context(), p, routes); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ready\n")
	})
	mux.Handle("/metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	if withPprof { // profiles expose the command line and memory: opt-in (admin.pprof)
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return srv, nil
}

// readiness is the pipeline's progress check plus a ping of every sink
// that can be pinged.
func readiness(ctx context.Context, p *pipeline.Pipeline, routes []pipeline.Route) error {
	errs := []error{p.Ready()}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for _, r := range routes {
		if pg, ok := r.Sink.(cdc.Pinger); ok {
			if err := pg.Ping(ctx); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", r.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

func openDeadLetter(cfg *config.Config) (deadletter.Writer, error) {
	dc, _ := config.Block[deadletter.Config](cfg, "deadletter")
	w, err := deadletter.Open(dc)
	if err != nil {
		return nil, err
	}
	return deadletter.Scrubbed(w, scrubberFor(cfg).String), nil
}

// Defaults of the Go collector when neither the config nor the
// environment sets them. The runtime's own (GOGC 100, no limit) let the
// heap grow to twice the live data and collected each time it did: on a
// drain a collection every ~30 MiB allocated, 15-20% of the CPU. A higher
// target with a limit collects seldom while the live data is small and
// still bounds the peak.
const (
	defaultGCPercent   = 200
	defaultMemoryLimit = 96 << 20
)

// gcSettings are the collector's settings for a process and where each
// came from: "config", "default", or the environment variable's name
// (the runtime applied it at start; percent or limit is then unused).
type gcSettings struct {
	percent     int   // -1: off
	limit       int64 // math.MaxInt64: none
	percentFrom string
	limitFrom   string
}

// gcFor resolves the collector's settings: the config's pipeline keys
// win, then GOGC and GOMEMLIMIT, then this package's defaults. The
// default limit grows with the window: max_in_flight_bytes bounds the
// live data the limit must stay well above.
func gcFor(pc config.Pipeline, lookupEnv func(string) (string, bool)) gcSettings {
	g := gcSettings{percent: defaultGCPercent, percentFrom: "default", limitFrom: "default"}
	switch {
	case pc.GCPercent != 0:
		g.percent, g.percentFrom = pc.GCPercent, "config"
	case envSet(lookupEnv, "GOGC"):
		g.percentFrom = "GOGC"
	}
	window := pc.MaxInFlightBytes
	if window <= 0 {
		window = pipeline.DefaultMaxInFlightBytes
	}
	g.limit = max(defaultMemoryLimit, 64<<20+4*window)
	switch {
	case pc.MemoryLimit == -1:
		g.limit, g.limitFrom = math.MaxInt64, "config"
	case pc.MemoryLimit > 0:
		g.limit, g.limitFrom = pc.MemoryLimit, "config"
	case envSet(lookupEnv, "GOMEMLIMIT"):
		g.limitFrom = "GOMEMLIMIT"
	}
	return g
}

func envSet(lookupEnv func(string) (string, bool), name string) bool {
	v, ok := lookupEnv(name)
	return ok && v != ""
}

// setGC applies the collector's settings (gcFor) to this process and
// logs those in effect.
func setGC(pc config.Pipeline, log *slog.Logger) {
	g := gcFor(pc, os.LookupEnv)
	if g.percentFrom != "GOGC" {
		debug.SetGCPercent(g.percent)
	}
	if g.limitFrom != "GOMEMLIMIT" {
		debug.SetMemoryLimit(g.limit)
	}
	s := []rtmetrics.Sample{{Name: "/gc/gogc:percent"}, {Name: "/gc/gomemlimit:bytes"}}
	rtmetrics.Read(s)
	percent, limit := int64(s[0].Value.Uint64()), "none"
	if b := s[1].Value.Uint64(); b < math.MaxInt64 {
		limit = fmt.Sprintf("%d MiB", b>>20)
	} else if percent < 0 {
		log.Warn("garbage collector off and no memory limit: the heap grows without bound", "from", g.percentFrom, "limit_from", g.limitFrom)
	}
	log.Info("garbage collector", "gc_percent", percent, "from", g.percentFrom,
		"memory_limit", limit, "limit_from", g.limitFrom)
}

// pipelineOptions are the pipeline: settings and the router's answers
// that run and snapshot share. log must not carry the pipeline attribute:
// the pipeline adds it.
func pipelineOptions(d *deps, dl deadletter.Writer, m *metrics.Metrics, log *slog.Logger) pipeline.Options {
	pc := d.cfg.Pipeline
	return pipeline.Options{
		Name: d.cfg.Name, Workers: pc.Workers, MaxInFlight: pc.MaxInFlight, MaxInFlightBytes: pc.MaxInFlightBytes,
		MaxApply: pc.MaxApply, RetryMin: pc.RetryMin, RetryMax: pc.RetryMax,
		StuckAfter: pc.StuckAfter, ShutdownGrace: pc.ShutdownGrace,
		KeyColumns: d.router.KeyColumns, DeadLetter: dl, RenderEvent: renderDeadLetter(d.cfg, d.router),
		MatchTable: d.routed,
		Metrics:    m, Logger: log,
	}
}

// renderDeadLetter renders a dead-lettered change without the columns its
// table rule keeps out of the sinks (or with them redacted).
func renderDeadLetter(cfg *config.Config, r *config.Router) func(cdc.Event) ([]byte, error) {
	dc, _ := config.Block[deadletter.Config](cfg, "deadletter")
	return deadletter.Renderer(decode.EventJSON, r.HiddenColumns, dc.ExcludedColumns)
}
