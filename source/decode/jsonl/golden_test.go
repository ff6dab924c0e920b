package jsonl

import (
	"testing"

	"github.com/rowsync/rowsync/source/decode"
	"github.com/rowsync/rowsync/source/decode/internal/golden"
)

// TestGolden decodes every sample of testdata (copied from the shared
// format corpus, one message per line) and compares by meaning with its
// .expected.json: numbers by numeric value, typed values against the
// producer's representation. The EventJSON rendering is kept in .golden.
func TestGolden(t *testing.T) {
	key := func(db, table string) []string { return []string{"id"} }
	golden.Run(t, golden.Suite[any]{New: New, Options: decode.Options{KeyColumns: key},
		FileKey: "binlog_file", OffsetKey: "binlog_offset", Same: golden.SameJSON})
}
