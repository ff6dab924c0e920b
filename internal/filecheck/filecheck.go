// Package filecheck is the connection test of components that write files
// (the file dead letter, the file checkpoint) for `rowsync check`.
package filecheck

import (
	"fmt"
	"os"
)

// WritableDir returns nil when a file can be created in dir: it creates a
// hidden temporary file there and removes it.
func WritableDir(dir string) error {
	f, err := os.CreateTemp(dir, ".rowsync-check-*")
	if err != nil {
		return fmt.Errorf("not writable: %w", err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}
