// Package testlock serialises tests of concurrent test processes that
// share one resource of the machine's services (a Redis DB index that a
// test flushes, the FerretDB server a test stops): two `make test` runs
// side by side must both pass, so such a test holds the resource's lock.
//
// The lock is an flock(2) on a file under $ROWSYNC_STATE (default
// /tmp/rowsync-state)/locks; the kernel releases it when the holder exits,
// so a killed test process never leaves it held.
package testlock

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Wait is how long Acquire waits for another process to release a lock:
// longer than any test that holds one runs on a loaded machine.
const Wait = 20 * time.Minute

// Acquire takes the lock named name, waiting up to Wait for another test
// process to release it, and returns the function that releases it.
// waiting, if not nil, is called once when the lock is found held.
func Acquire(name string, waiting func()) (release func(), err error) {
	dir := filepath.Join(cmp.Or(os.Getenv("ROWSYNC_STATE"), "/tmp/rowsync-state"), "locks")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("test lock %s: %w", name, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, name+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("test lock %s: %w", name, err)
	}
	deadline := time.Now().Add(Wait)
	for told := false; ; {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("test lock %s: %w", f.Name(), err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("test lock %s: another test process held it for %v", f.Name(), Wait)
		}
		if !told && waiting != nil {
			waiting()
			told = true
		}
		time.Sleep(500 * time.Millisecond)
	}
}
