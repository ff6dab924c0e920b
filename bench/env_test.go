package main

import (
	"slices"
	"strings"
	"testing"
)

// TestRowsyncEnv: the driver's runtime variables stay behind, the flag's
// win (KEY= unsets), everything else passes through, and the note says
// what rowsync got and what it did not.
func TestRowsyncEnv(t *testing.T) {
	cases := []struct {
		name                string
		base, flags         []string
		want, dropped       []string
		noteHas, noteHasNot []string
	}{
		{"defaults", []string{"PATH=/bin", "HOME=/root"}, defaultRowsyncEnv,
			[]string{"PATH=/bin", "HOME=/root", "GOMAXPROCS=2"}, nil,
			[]string{"GOMAXPROCS=2;", "GOGC, GOMEMLIMIT, GODEBUG unset"}, []string{"not passed"}},
		{"the driver's runtime variables stay behind",
			[]string{"GOGC=50", "PATH=/bin", "GOMEMLIMIT=1GiB", "GODEBUG=gctrace=1", "GOMAXPROCS=1"}, defaultRowsyncEnv,
			[]string{"PATH=/bin", "GOMAXPROCS=2"}, []string{"GOGC=50", "GOMEMLIMIT=1GiB", "GODEBUG=gctrace=1", "GOMAXPROCS=1"},
			[]string{"not passed from the driver's env: GOGC=50 GOMEMLIMIT=1GiB GODEBUG=gctrace=1 GOMAXPROCS=1"}, nil},
		{"the flag sets them", []string{"GOGC=50", "PATH=/bin"},
			append(slices.Clone(defaultRowsyncEnv), "GOGC=400", "GODEBUG=gctrace=1,madvdontneed=1", "GOMAXPROCS=1"),
			[]string{"PATH=/bin", "GOMAXPROCS=1", "GOGC=400", "GODEBUG=gctrace=1,madvdontneed=1"}, []string{"GOGC=50"},
			[]string{"GOGC=400 GODEBUG=gctrace=1,madvdontneed=1 GOMAXPROCS=1;", "GOMEMLIMIT unset"}, nil},
		{"KEY= unsets, also other variables", []string{"PATH=/bin", "ROWSYNC_X=1"},
			append(slices.Clone(defaultRowsyncEnv), "GOMAXPROCS=", "ROWSYNC_X=", "EXTRA=y"),
			[]string{"PATH=/bin", "EXTRA=y"}, nil,
			[]string{"EXTRA=y;", "GOGC, GOMEMLIMIT, GODEBUG, GOMAXPROCS unset"}, []string{"ROWSYNC_X"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var set envVars
			for _, kv := range tc.flags {
				if err := set.Set(kv); err != nil {
					t.Fatal(err)
				}
			}
			env, dropped := rowsyncEnv(tc.base, &set)
			if !slices.Equal(env, tc.want) {
				t.Errorf("env %q, want %q", env, tc.want)
			}
			if !slices.Equal(dropped, tc.dropped) {
				t.Errorf("dropped %q, want %q", dropped, tc.dropped)
			}
			note := envNote(&set, dropped)
			for _, s := range tc.noteHas {
				if !strings.Contains(note, s) {
					t.Errorf("note %q lacks %q", note, s)
				}
			}
			for _, s := range tc.noteHasNot {
				if strings.Contains(note, s) {
					t.Errorf("note %q has %q", note, s)
				}
			}
		})
	}
}

// TestEnvVarsSet: malformed values are refused.
func TestEnvVarsSet(t *testing.T) {
	for _, bad := range []string{"", "GOGC", "=1", "1X=2", "A B=1"} {
		var e envVars
		if err := e.Set(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
