package filecheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWritableDir(t *testing.T) {
	dir := t.TempDir()
	if err := WritableDir(dir); err != nil {
		t.Fatalf("temp dir: %v", err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("check left %d files behind", len(left))
	}
	err := WritableDir(filepath.Join(dir, "missing"))
	if err == nil || !strings.Contains(err.Error(), "not writable") {
		t.Fatalf("missing dir: %v", err)
	}
	if os.Getuid() != 0 { // root writes anywhere
		ro := filepath.Join(dir, "ro")
		if err := os.Mkdir(ro, 0o500); err != nil {
			t.Fatal(err)
		}
		if err := WritableDir(ro); err == nil {
			t.Fatal("read-only dir passed")
		}
	}
}
