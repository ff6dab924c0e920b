package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/rowsync/rowsync/internal/atomicfile"
)

// File stores a checkpoint as JSON in one file. Save writes a temporary
// file in the same directory, fsyncs it, renames it over the old one and
// fsyncs the directory, so a crash leaves either the old or the new
// position, never a torn one.
type File struct {
	path string
	mu   sync.Mutex // one Save at a time: they share the temporary file name
}

var _ Store = (*File)(nil)

// NewFile returns a store at path, creating its directory if needed.
func NewFile(path string) (*File, error) {
	if path == "" {
		return nil, errors.New("checkpoint: empty file path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("checkpoint dir: %w", err)
	}
	return &File{path: path}, nil
}

// Load reads the checkpoint; a missing file gives false.
func (f *File) Load(ctx context.Context) (Position, bool, error) {
	if err := ctx.Err(); err != nil {
		return Position{}, false, err
	}
	b, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return Position{}, false, nil
	}
	if err != nil {
		return Position{}, false, fmt.Errorf("read checkpoint: %w", err)
	}
	p, err := Unmarshal(b)
	if err != nil {
		return Position{}, false, fmt.Errorf("%s: %w", f.path, err)
	}
	return p, true, nil
}

// Save replaces the checkpoint atomically and durably.
func (f *File) Save(ctx context.Context, p Position) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b, err := p.Marshal()
	if err != nil {
		return fmt.Errorf("encode checkpoint: %w", err)
	}
	b = append(b, '\n')
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := atomicfile.Write(f.path, b); err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	return nil
}

// Close does nothing; File holds no open handles between calls.
func (f *File) Close() error { return nil }
