package canaljson

import (
	"encoding/base64"
	"math/big"
	"strconv"
	"testing"
	"time"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/source/decode/internal/golden"
)

// TestGolden decodes every sample of testdata (copied from the shared
// format corpus) and compares by value with its .expected.json: the typed
// values rendered to MySQL text must equal the producer's text.
func TestGolden(t *testing.T) {
	golden.Run(t, golden.Suite[*string]{New: New, Same: sameValue})
}

// sameValue compares a typed value with the producer's text.
func sameValue(col *cdc.Column, v cdc.Value, want *string, b64 string) string {
	if want == nil {
		if v != nil {
			return "got " + strconv.Quote(render(col, v)) + ", want NULL"
		}
		return ""
	}
	if v == nil {
		return "got NULL, want " + strconv.Quote(*want)
	}
	switch x := v.(type) {
	case []byte:
		if b64 != "" {
			if base64.StdEncoding.EncodeToString(x) != b64 {
				return "bytes " + base64.StdEncoding.EncodeToString(x) + ", want " + b64
			}
			return ""
		}
		want := []rune(*want)
		if len(want) != len(x) {
			return "byte length differs"
		}
		for i := range x {
			if rune(x[i]) != want[i] {
				return "bytes differ"
			}
		}
		return ""
	case float64:
		bits := 64
		if col.Kind == cdc.KindFloat {
			bits = 32
		}
		f, err := strconv.ParseFloat(*want, bits)
		if err != nil || f != x {
			return "got " + strconv.FormatFloat(x, 'g', -1, bits) + ", want " + *want
		}
		return ""
	case cdc.Decimal:
		a, ok1 := new(big.Rat).SetString(string(x))
		b, ok2 := new(big.Rat).SetString(*want)
		if !ok1 || !ok2 || a.Cmp(b) != 0 {
			return "got " + string(x) + ", want " + *want
		}
		return ""
	}
	if s := render(col, v); s != *want {
		return "got " + strconv.Quote(s) + ", want " + strconv.Quote(*want)
	}
	return ""
}

func render(col *cdc.Column, v cdc.Value) string {
	if t, ok := v.(time.Time); ok && col.Kind == cdc.KindDate {
		return t.Format("2006-01-02")
	}
	s, _ := cdc.FormatText(col, v)
	return s
}
