package testlock

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestExclusiveAcrossProcesses holds a lock in this process and checks
// that a child process (this test binary, in helper mode) cannot take it
// until it is released.
func TestExclusiveAcrossProcesses(t *testing.T) {
	if os.Getenv("TESTLOCK_CHILD") == "1" {
		release, err := Acquire(os.Getenv("TESTLOCK_NAME"), func() { os.Stdout.WriteString("waiting\n") })
		if err != nil {
			t.Fatal(err)
		}
		release()
		return
	}
	t.Setenv("ROWSYNC_STATE", t.TempDir())
	name := "x"
	release, err := Acquire(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestExclusiveAcrossProcesses$")
	cmd.Env = append(os.Environ(), "TESTLOCK_CHILD=1", "TESTLOCK_NAME="+name)
	out := &syncBuf{}
	cmd.Stdout = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The child reports that it waits; only then is the lock released.
	deadline := time.Now().Add(3 * time.Minute)
	for !out.has("waiting") {
		if time.Now().After(deadline) {
			t.Fatalf("the child never reported waiting for the held lock; output %q", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	release()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v; output %q", err, out.String())
	}
}

type syncBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *syncBuf) has(s string) bool { return strings.Contains(b.String(), s) }
