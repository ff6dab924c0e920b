package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/config"
	"github.com/rowsync/rowsync/pipeline"
)

// cmdCheck validates the config, then tries every configured connection
// and prints one line per component. It exits 1 if any check fails.
func cmdCheck(args []string, stdout, stderr io.Writer) int {
	cfg, _, code := loadConfig("check", args, stderr, nil)
	if cfg == nil {
		return code
	}
	fmt.Fprintln(stdout, "ok    config")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	failed := false
	scrub := scrubberFor(cfg)
	report := func(component string, err error) {
		if err != nil {
			failed = true
			fmt.Fprintf(stdout, "FAIL  %s: %v\n", scrub.String(component), scrub.Error(err))
			return
		}
		fmt.Fprintf(stdout, "ok    %s\n", component)
	}
	d, err := newDeps(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		report("clients", err)
		return exitFail
	}
	defer d.close()
	routes, err := buildRoutes(ctx, d, nil)
	if err != nil {
		report("sinks", err)
		return exitFail
	}
	defer closeRoutes(routes, d.log)
	for _, w := range plaintextWarnings(cfg) {
		fmt.Fprintf(stdout, "warn  %s\n", w)
	}
	for _, c := range checks(cfg, d, routes) {
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		report(c.name, c.run(cctx))
		ccancel()
	}
	if failed {
		return exitFail
	}
	return exitOK
}

type check struct {
	name string
	run  func(ctx context.Context) error
}

// checks lists the connection tests: those of the source's and the other
// components' blocks (cdc.Checker), the sinks' pings (cdc.Pinger), and the
// schema of the mapped tables.
func checks(cfg *config.Config, d *deps, routes []pipeline.Route) []check {
	var out []check
	add := func(key string, block any) {
		if c, ok := block.(cdc.Checker); ok {
			if name, p := c.Check(key); p != nil {
				out = append(out, check{name, p.Ping})
			}
		}
	}
	add("source."+cfg.Source, d.sourceBlock())
	for _, b := range blocks {
		if v, ok := d.block(b); ok {
			add(b.key, v)
		}
	}
	for _, r := range routes {
		if pg, ok := r.Sink.(cdc.Pinger); ok {
			out = append(out, check{"sink " + r.Name, pg.Ping})
		}
	}
	out = append(out, check{"schema of mapped tables", func(ctx context.Context) error { return checkSchemasOnce(ctx, cfg, routes) }})
	return out
}
