package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// runCeiling measures what Redis itself takes on this machine:
// unpipelined SET, and SET and HSET pipelined 64 deep.
func runCeiling(ctx context.Context, o *options, t *table) error {
	defer flush(context.Background(), sinkDB)
	get := func(args ...string) (float64, error) {
		full := append([]string{"-q", "-n", "200000", "--dbnum", strconv.Itoa(sinkDB)}, args...)
		out, err := exec.CommandContext(ctx, "redis-benchmark", full...).CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("redis-benchmark %v: %w: %s", args, err, out)
		}
		// -q prints "SET: 27027.03 requests per second, p50=..." after
		// \r-separated progress lines.
		re := regexp.MustCompile(`([0-9.]+) requests per second`)
		m := re.FindAllSubmatch(out, -1)
		if len(m) == 0 {
			return 0, fmt.Errorf("redis-benchmark %v: no figure in %q", args, out)
		}
		return strconv.ParseFloat(string(m[len(m)-1][1]), 64)
	}
	set1, err := get("-t", "set")
	if err != nil {
		return err
	}
	set64, err := get("-t", "set", "-P", "64")
	if err != nil {
		return err
	}
	hset64, err := get("-t", "hset", "-P", "64")
	if err != nil {
		return err
	}
	t.add(row{bench: "ceiling: redis-benchmark SET, unpipelined", figure: rate(set1, "ops/s")})
	t.add(row{bench: "ceiling: redis-benchmark SET, -P 64", figure: rate(set64, "ops/s"), baseline: rate(set1, "ops/s") + " (-P 1)", ratio: ratio(set64, set1)})
	t.add(row{bench: "ceiling: redis-benchmark HSET, -P 64", figure: rate(hset64, "ops/s")})
	return nil
}

// microRun is one go test -bench invocation and how to read it.
type microRun struct {
	pkg, pattern, benchtime string
	rows                    []microRow
}

type microRow struct {
	label, figure, baseline, unit, target string
	min                                   float64 // pass when ≥ min × baseline (0: no verdict)
}

// runMicro runs the packages' own microbenchmarks and puts their figures
// beside their in-package baselines.
func runMicro(ctx context.Context, o *options, t *table) error {
	runs := []microRun{
		{pkg: "./projector/redis/", pattern: "^(BenchmarkApply|BenchmarkNaive)$", benchtime: "2s", rows: []microRow{
			{"micro: projector/redis Apply (1k-row batches) vs naive DEL+HSET", "BenchmarkApply/unguarded", "BenchmarkNaive/del+hset", "rows/s", "", 0},
			{"micro: projector/redis Apply, version-guarded", "BenchmarkApply/guarded", "BenchmarkNaive/del+hset", "rows/s", "", 0},
			{"micro: projector/redis Apply, 4 shards in parallel", "BenchmarkApply/parallel4", "BenchmarkNaive/hset", "rows/s", "", 0},
		}},
		{pkg: "./invalidator/", pattern: "^BenchmarkInvalidate$", benchtime: "2s", rows: []microRow{
			{"micro: invalidator Apply (500-event batches) vs DEL/key", "BenchmarkInvalidate/invalidator", "BenchmarkInvalidate/naive-del-per-key", "keys/s", "", 0},
			{"micro: invalidator Apply + delayed 2nd delete", "BenchmarkInvalidate/invalidator+delay", "BenchmarkInvalidate/naive-del-per-key", "keys/s", "", 0},
		}},
		{pkg: "./source/decode/canaljson/", pattern: "^(BenchmarkDecode|BenchmarkDecodeBaseline)$", benchtime: "1s", rows: []microRow{
			{"micro: canal-json decode, 1 row/msg vs encoding/json", "BenchmarkDecode/rows=1", "BenchmarkDecodeBaseline/rows=1", "rows/s", "", 0},
			{"micro: canal-json decode, 10 rows/msg vs encoding/json", "BenchmarkDecode/rows=10", "BenchmarkDecodeBaseline/rows=10", "rows/s", "", 0},
		}},
		{pkg: "./source/decode/debezium/", pattern: "^BenchmarkDecodeWide$", benchtime: "1s", rows: []microRow{
			{"micro: debezium with schema (9 KB, 24 columns), schema cached vs parsed per message", "BenchmarkDecodeWide/schema", "BenchmarkDecodeWide/schema-parsed-per-message", "msgs/s", "", 0},
			{"micro: debezium with schema vs schemaless (same row)", "BenchmarkDecodeWide/schema", "BenchmarkDecodeWide/schemaless-raw", "msgs/s", "", 0},
			{"micro: debezium schemaless typed by a schema source vs untyped", "BenchmarkDecodeWide/schemaless-typed", "BenchmarkDecodeWide/schemaless-raw", "msgs/s", "", 0},
		}},
	}
	var errs []string
	for _, r := range runs {
		res, err := goBench(ctx, o, r.pkg, r.pattern, r.benchtime)
		if err != nil {
			errs = append(errs, err.Error())
			t.add(row{bench: "micro: " + r.pkg, figure: "ERROR: " + oneLine(err.Error()), pass: "fail"})
			continue
		}
		for _, mr := range r.rows {
			f, ok := res[mr.figure][mr.unit]
			if !ok {
				t.add(row{bench: mr.label, figure: "not reported (" + mr.figure + ")"})
				continue
			}
			b := res[mr.baseline][mr.unit]
			t.add(row{bench: mr.label, figure: rate(f, mr.unit), baseline: rate(b, mr.unit), ratio: ratio(f, b)})
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(-\d+)?\s+\d+\s+(.*)$`)

// goBench runs go test -bench in the module root and returns each
// benchmark's reported metrics by unit.
func goBench(ctx context.Context, o *options, pkg, pattern, benchtime string) (map[string]map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", pattern, "-benchtime", benchtime, "-count", "1", pkg)
	cmd.Dir = o.root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("go test -bench %s: %w: %s", pkg, err, lastLines(out, 6))
	}
	res := map[string]map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		f := strings.Fields(m[3])
		metrics := map[string]float64{}
		for i := 0; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				metrics[f[i+1]] = v
			}
		}
		res[m[1]] = metrics
	}
	o.log.Debug("go test -bench", "pkg", pkg, "output", string(out))
	return res, nil
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " ⏎ ")
}
