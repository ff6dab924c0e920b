package main

import (
	"log/slog"
	"math"
	"runtime/debug"
	"testing"

	"github.com/rowsync/rowsync/config"
)

// TestGCSettingsPrecedence: the config's keys win over GOGC and
// GOMEMLIMIT, which win over the defaults; the default limit grows with
// the window.
func TestGCSettingsPrecedence(t *testing.T) {
	const mib = 1 << 20
	cases := []struct {
		name        string
		pc          config.Pipeline
		vars        map[string]string
		percent     int
		percentFrom string
		limit       int64
		limitFrom   string
	}{
		{"defaults", config.Pipeline{}, nil, defaultGCPercent, "default", 96 * mib, "default"},
		{"empty variables are unset", config.Pipeline{}, map[string]string{"GOGC": "", "GOMEMLIMIT": ""}, defaultGCPercent, "default", 96 * mib, "default"},
		{"a larger window raises the limit", config.Pipeline{MaxInFlightBytes: 64 * mib}, nil, defaultGCPercent, "default", 320 * mib, "default"},
		{"a smaller window keeps it", config.Pipeline{MaxInFlightBytes: 1 * mib}, nil, defaultGCPercent, "default", 96 * mib, "default"},
		{"environment", config.Pipeline{}, map[string]string{"GOGC": "150", "GOMEMLIMIT": "200MiB"}, defaultGCPercent, "GOGC", 96 * mib, "GOMEMLIMIT"},
		{"GOGC=off alone", config.Pipeline{}, map[string]string{"GOGC": "off"}, defaultGCPercent, "GOGC", 96 * mib, "default"},
		{"config over environment", config.Pipeline{GCPercent: 300, MemoryLimit: 150 * mib}, map[string]string{"GOGC": "150", "GOMEMLIMIT": "200MiB"}, 300, "config", 150 * mib, "config"},
		{"no limit", config.Pipeline{MemoryLimit: -1}, map[string]string{"GOMEMLIMIT": "200MiB"}, defaultGCPercent, "default", math.MaxInt64, "config"},
		{"collector off", config.Pipeline{GCPercent: -1}, nil, -1, "config", 96 * mib, "default"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := gcFor(tc.pc, env(tc.vars))
			if g.percentFrom != tc.percentFrom || g.limitFrom != tc.limitFrom {
				t.Fatalf("from %q/%q, want %q/%q", g.percentFrom, g.limitFrom, tc.percentFrom, tc.limitFrom)
			}
			if g.percentFrom != "GOGC" && g.percent != tc.percent {
				t.Errorf("percent %d, want %d", g.percent, tc.percent)
			}
			if g.limitFrom != "GOMEMLIMIT" && g.limit != tc.limit {
				t.Errorf("limit %d MiB, want %d MiB", g.limit/mib, tc.limit/mib)
			}
		})
	}
}

// TestSetGCApplies: the resolved settings reach the runtime (restored
// afterwards for the other tests of this process).
func TestSetGCApplies(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	oldPercent := debug.SetGCPercent(100)
	oldLimit := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetGCPercent(oldPercent); debug.SetMemoryLimit(oldLimit) })
	setGC(config.Pipeline{GCPercent: 250, MemoryLimit: 300 << 20}, slog.New(slog.DiscardHandler))
	if p := debug.SetGCPercent(100); p != 250 {
		t.Errorf("gc percent %d, want 250", p)
	}
	if l := debug.SetMemoryLimit(-1); l != 300<<20 {
		t.Errorf("memory limit %d, want %d", l, 300<<20)
	}
}
