package main

import (
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

func TestInterpolate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := time.Millisecond
	pts := []cpuPoint{{t0, 0}, {t0.Add(100 * ms), 40 * ms}, {t0.Add(200 * ms), 40 * ms}, {t0.Add(300 * ms), 100 * ms}}
	cases := []struct {
		name string
		at   time.Time
		want time.Duration
	}{
		{"before the first", t0.Add(-time.Second), 0},
		{"on a point", t0.Add(100 * ms), 40 * ms},
		{"between", t0.Add(50 * ms), 20 * ms},
		{"flat stretch", t0.Add(150 * ms), 40 * ms},
		{"last stretch", t0.Add(250 * ms), 70 * ms},
		{"after the last", t0.Add(time.Hour), 100 * ms},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := interpolate(pts, tc.at); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	if got := interpolate(nil, t0); got != 0 {
		t.Errorf("empty series: %v", got)
	}
}

// TestPolls: the waits stay within their bounds, grow with a slow start,
// and aim at the target count.
func TestPolls(t *testing.T) {
	if d := startupPoll(100 * time.Millisecond); d != startupPollMin {
		t.Errorf("startupPoll(100ms) = %v", d)
	}
	if d := startupPoll(1500 * time.Millisecond); d != 150*time.Millisecond {
		t.Errorf("startupPoll(1.5s) = %v", d)
	}
	if d := startupPoll(time.Minute); d != startupPollMax {
		t.Errorf("startupPoll(1m) = %v", d)
	}
	t0 := time.Unix(1000, 0)
	cases := []struct {
		name                  string
		since                 time.Duration
		firstN, events, total float64
		want                  time.Duration
	}{
		{"no progress yet", 0, 10, 10, 1000, startupPollMax},
		{"eta", time.Second, 0, 1000, 1300, 300 * time.Millisecond},
		{"far: capped", time.Second, 0, 1000, 100_000, drainPollMax},
		{"near: floored", time.Second, 0, 1000, 1001, drainPollMin},
		{"reached", time.Second, 0, 1000, 1000, drainPollMin},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if d := drainPoll(t0.Add(tc.since), t0, tc.firstN, tc.events, tc.total); d != tc.want {
				t.Errorf("got %v, want %v", d, tc.want)
			}
		})
	}
}

// TestCPUSeries samples this process while it burns CPU: the series
// grows, and a reading at an instant lies between the readings around it.
func TestCPUSeries(t *testing.T) {
	pid := os.Getpid()
	s := sampleCPU(pid, time.Time{})
	defer s.close()
	// burn spins until the process has used d more CPU time (read from
	// /proc, as the series does), not d of wall time: on a loaded machine
	// the loop may get a fraction of a core.
	burn := func(d time.Duration) {
		t.Helper()
		from, err := procCPU(pid)
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(2 * time.Minute)
		for x := 0; ; x++ {
			_ = x * x
			if x%(1<<16) != 0 {
				continue
			}
			if c, err := procCPU(pid); err != nil || c-from >= d {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%v of CPU not used in 2 minutes", d)
			}
		}
	}
	start := time.Now()
	burn(200 * time.Millisecond)
	mid := time.Now()
	burn(400 * time.Millisecond)
	end := time.Now()
	c0, c1, c2 := s.at(start), s.at(mid), s.at(end)
	if !(c0 <= c1 && c1 <= c2) {
		t.Fatalf("not monotonic: %v %v %v", c0, c1, c2)
	}
	if c2-c0 < 100*time.Millisecond {
		t.Errorf("600 ms of busy loop measured as %v", c2-c0)
	}
	s.close()
	s.close() // twice is fine
}

// TestHWM: VmHWM keeps a peak the RSS has left, and resetHWM forgets it.
func TestHWM(t *testing.T) {
	pid := os.Getpid()
	const size = 64 << 20
	b := make([]byte, size)
	for i := range b {
		b[i] = 1
	}
	peak := vmHWM(pid)
	if peak < size {
		t.Fatalf("VmHWM %d MiB after touching %d MiB", peak>>20, size>>20)
	}
	b = nil
	debug.FreeOSMemory()
	if err := resetHWM(pid); err != nil {
		t.Fatal(err)
	}
	rss, err := rss(pid)
	if err != nil {
		t.Fatal(err)
	}
	after := vmHWM(pid)
	if after >= peak || after > rss+8<<20 {
		t.Errorf("after the reset VmHWM %d MiB (peak was %d MiB, RSS %d MiB)", after>>20, peak>>20, rss>>20)
	}
}

// TestStartupSteps: the startup is split by rowsync's log times from the
// process start (the drain's end less its total), and a log without the
// assignment line, or no log, says so instead of dropping the split
// silently.
func TestStartupSteps(t *testing.T) {
	start := time.Date(2026, 12, 6, 1, 0, 0, 0, time.UTC)
	res := drainResult{end: start.Add(2 * time.Second), total: 2 * time.Second, startup: 180 * time.Millisecond}
	dir := t.TempDir()
	write := func(name, text string) string {
		p := dir + "/" + name
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	full := write("full.log", "not a log line\ntime=2026-12-06T01:00:00.036Z level=INFO msg=starting\n"+
		"time=2026-12-06T01:00:00.041Z level=INFO msg=\"partitions assigned\" n=6\ntime=\n")
	got := startupSteps(log, full, res)
	for _, want := range []string{"first log line 36ms", "partitions assigned 41ms", "first changes applied 180ms"} {
		if !strings.Contains(got, want) {
			t.Errorf("split %q lacks %q", got, want)
		}
	}
	for name, path := range map[string]string{
		"no assignment": write("warn.log", "time=2026-12-06T01:00:00.036Z level=WARN msg=x\n"),
		"no log":        dir + "/missing.log",
	} {
		if got := startupSteps(log, path, res); !strings.Contains(got, "first changes applied 180ms (not split: ") {
			t.Errorf("%s: %q", name, got)
		}
	}
}

// TestPooledRate: runs of the same size taken together run at the
// harmonic mean of their rates.
func TestPooledRate(t *testing.T) {
	if got := pooledRate(10, 30); got != 15 {
		t.Errorf("pooledRate(10, 30) = %v, want 15", got)
	}
	if got := pooledRate(20); got != 20 {
		t.Errorf("pooledRate(20) = %v", got)
	}
	if got := pooledRate(20, 0); got != 0 {
		t.Errorf("a run that read nothing: %v, want 0", got)
	}
}
