package main

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// runtimeVars are the Go runtime's tuning variables. The driver does not
// pass its own to rowsync (a GOGC exported in the shell for another
// experiment would change what is measured, unseen): only -rowsync-env
// (and its GOMAXPROCS default) sets them, and the results say which.
var runtimeVars = []string{"GOGC", "GOMEMLIMIT", "GODEBUG", "GOMAXPROCS"}

// defaultRowsyncEnv is what -rowsync-env starts from: both cores of this
// machine, as every run before the flag existed.
var defaultRowsyncEnv = []string{"GOMAXPROCS=2"}

// envVars is the repeatable -rowsync-env flag: KEY=VALUE, one variable
// each (GODEBUG's value may hold commas); KEY= unsets KEY.
type envVars struct {
	set   map[string]string // KEY → VALUE; "" unsets
	order []string          // keys in the order given, for the results
}

var envKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func (e *envVars) String() string {
	if e == nil {
		return ""
	}
	var s []string
	for _, k := range e.order {
		s = append(s, k+"="+e.set[k])
	}
	return strings.Join(s, " ")
}

func (e *envVars) Set(kv string) error {
	k, v, ok := strings.Cut(kv, "=")
	if !ok || !envKey.MatchString(k) {
		return fmt.Errorf("want KEY=VALUE (KEY= to unset), got %q", kv)
	}
	if e.set == nil {
		e.set = map[string]string{}
	}
	if _, seen := e.set[k]; !seen {
		e.order = append(e.order, k)
	}
	e.set[k] = v
	return nil
}

// rowsyncEnv returns the environment of the rowsync processes: base (the
// driver's) without the runtime's variables, then the set ones; and the
// runtime variables of base it left out, for the results.
func rowsyncEnv(base []string, set *envVars) (env, dropped []string) {
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case slices.Contains(runtimeVars, k):
			dropped = append(dropped, kv)
		case set.has(k):
			// replaced (or unset) by the flag
		default:
			env = append(env, kv)
		}
	}
	for _, k := range set.order {
		if v := set.set[k]; v != "" {
			env = append(env, k+"="+v)
		}
	}
	return env, dropped
}

func (e *envVars) has(k string) bool {
	_, ok := e.set[k]
	return ok
}

// envNote says which runtime variables rowsync ran with, for the results.
func envNote(set *envVars, dropped []string) string {
	var on, off []string
	for _, k := range runtimeVars {
		if v := set.set[k]; v != "" {
			on = append(on, k+"="+v)
		} else {
			off = append(off, k)
		}
	}
	for _, k := range set.order {
		if v := set.set[k]; v != "" && !slices.Contains(runtimeVars, k) {
			on = append(on, k+"="+v)
		}
	}
	s := "rowsync's env: "
	if len(on) > 0 {
		s += strings.Join(on, " ") + "; "
	}
	s += strings.Join(off, ", ") + " unset (rowsync's own defaults)"
	if len(dropped) > 0 {
		s += "; not passed from the driver's env: " + strings.Join(dropped, " ")
	}
	return s
}
