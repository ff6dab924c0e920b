package debezium

import (
	"testing"

	"github.com/rowsync/rowsync/source/decode/internal/golden"
)

// TestGolden decodes every sample of testdata (copied from the shared
// format corpus, one message per line) and compares by meaning with its
// .expected.json: numbers by numeric value, typed values against the
// producer's representation. The EventJSON rendering is kept in .golden.
func TestGolden(t *testing.T) {
	golden.Run(t, golden.Suite[any]{New: New, FileKey: "file", OffsetKey: "pos", Same: golden.SameJSON})
}
