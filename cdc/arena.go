package cdc

import (
	"math"
	"time"
	"unsafe"
)

// Arena boxes Values in shared blocks. Converting an int64, float64,
// string, Decimal or time.Time to a Value allocates a copy of it on its
// own (a decoder's most frequent allocation: one per column of every
// row); an Arena copies it into a block of like values instead, one
// allocation per block.
//
// A Value from an Arena is an ordinary Value: compared, hashed, type
// switched and printed as any other. It keeps its whole block alive, so an
// Arena suits values that live and die together, as the rows of a stream
// do. A block is never written again where a Value points into it.
//
// The zero Arena is ready to use; a nil *Arena boxes as the language does.
// An Arena is not safe for concurrent use.
type Arena struct {
	words []uint64 // int64, uint64 and float64 bits
	strs  []string // string and Decimal
	times []time.Time
}

// Block sizes, in values: small enough that one long-lived value pins
// little, large enough that a 10-column row costs a fraction of an
// allocation.
const (
	arenaWords = 64
	arenaStrs  = 32
	arenaTimes = 16
)

// eface is the layout of an empty interface (runtime.eface).
type eface struct {
	typ, data unsafe.Pointer
}

func typeOf(v any) unsafe.Pointer { return (*eface)(unsafe.Pointer(&v)).typ }

var (
	int64Type   = typeOf(int64(0))
	uint64Type  = typeOf(uint64(0))
	float64Type = typeOf(float64(0))
	stringType  = typeOf("")
	decimalType = typeOf(Decimal(""))
	timeType    = typeOf(time.Time{})
)

// box returns the Value of type typ whose data is *p. p must point to a
// value of exactly that type that is never written again.
func box(typ, p unsafe.Pointer) Value {
	var v Value
	*(*eface)(unsafe.Pointer(&v)) = eface{typ, p}
	return v
}

func (a *Arena) word(typ unsafe.Pointer, w uint64) Value {
	if len(a.words) == cap(a.words) {
		a.words = make([]uint64, 0, arenaWords) // the old block stays as it is
	}
	a.words = append(a.words, w)
	return box(typ, unsafe.Pointer(&a.words[len(a.words)-1]))
}

// Int64 returns n as a Value.
func (a *Arena) Int64(n int64) Value {
	if a == nil || uint64(n) < 256 { // the runtime boxes these without allocating
		return n
	}
	return a.word(int64Type, uint64(n))
}

// Uint64 returns u as a Value.
func (a *Arena) Uint64(u uint64) Value {
	if a == nil || u < 256 {
		return u
	}
	return a.word(uint64Type, u)
}

// Int returns the canonical Value for an integer (see Int): int64 when it
// fits.
func (a *Arena) Int(u uint64) Value {
	if u <= 1<<63-1 {
		return a.Int64(int64(u))
	}
	return a.Uint64(u)
}

// Float64 returns f as a Value.
func (a *Arena) Float64(f float64) Value {
	if a == nil {
		return f
	}
	return a.word(float64Type, math.Float64bits(f))
}

func (a *Arena) str(typ unsafe.Pointer, s string) Value {
	if len(a.strs) == cap(a.strs) {
		a.strs = make([]string, 0, arenaStrs)
	}
	a.strs = append(a.strs, s)
	return box(typ, unsafe.Pointer(&a.strs[len(a.strs)-1]))
}

// String returns s as a Value.
func (a *Arena) String(s string) Value {
	if a == nil || s == "" {
		return s
	}
	return a.str(stringType, s)
}

// Decimal returns d as a Value.
func (a *Arena) Decimal(d Decimal) Value {
	if a == nil || d == "" {
		return d
	}
	return a.str(decimalType, string(d))
}

// Time returns t as a Value.
func (a *Arena) Time(t time.Time) Value {
	if a == nil {
		return t
	}
	if len(a.times) == cap(a.times) {
		a.times = make([]time.Time, 0, arenaTimes)
	}
	a.times = append(a.times, t)
	return box(timeType, unsafe.Pointer(&a.times[len(a.times)-1]))
}
