package changegen

import (
	"math/rand/v2"
	"slices"
)

// Shuffle is the disorder Order and Set.Shuffled produce: what one partition sees when
// a topic is written without canal's partitionHash, by several producers,
// or with retries that redeliver.
type Shuffle struct {
	Seed uint64
	// Window bounds how far a message moves: no message overtakes one
	// that was Window or more positions ahead of it, and a duplicate
	// lands at most Window positions after its original.
	// Default: 64
	Window int
	// DupPercent is the share of messages sent twice, in percent.
	// Default: 0
	DupPercent int
}

// Order returns the order of a shuffled stream of n messages: indexes
// into the original stream, each once, and sh.DupPercent of them a second
// time at a random later position within the window. It is deterministic
// in sh. Each message i gets the sort key i + U[0, Window) and the stream
// is sorted by it, so message j can only overtake message i when
// j - i < Window; a duplicate goes 1 to Window positions after where its
// original landed.
func (sh Shuffle) Order(n int) []int {
	w := sh.Window
	if w <= 0 {
		w = 64
	}
	rnd := rand.New(rand.NewPCG(sh.Seed, 0x5b0ff1e))
	type slot struct {
		key float64
		idx int
	}
	byKey := func(a, b slot) int {
		switch {
		case a.key < b.key:
			return -1
		case a.key > b.key:
			return 1
		}
		return 0
	}
	moved := make([]slot, n)
	for i := range moved {
		moved[i] = slot{key: float64(i) + rnd.Float64()*float64(w), idx: i}
	}
	slices.SortStableFunc(moved, byKey)
	all := make([]slot, 0, n+n*sh.DupPercent/100+1)
	for i, s := range moved {
		all = append(all, slot{key: float64(i), idx: s.idx})
		if rnd.IntN(100) < sh.DupPercent {
			all = append(all, slot{key: float64(i+1+rnd.IntN(w)) - 0.5, idx: s.idx})
		}
	}
	slices.SortStableFunc(all, byKey)
	order := make([]int, len(all))
	for i, s := range all {
		order[i] = s.idx
	}
	return order
}

// Shuffled is the set's messages in encoding as one stream (Partitions
// ignored), shuffled and duplicated as sh says, behind the set's Preamble.
// seqs[i] is the Seq of the change msgs[i] carries, -1 for the preamble.
func (s *Set) Shuffled(encoding string, sh Shuffle) (msgs []Message, seqs []int, err error) {
	var plain []Message
	var plainSeqs []int
	for i := range s.Changes {
		m, err := Encode(encoding, &s.Changes[i])
		if err != nil {
			return nil, nil, err
		}
		plain = append(plain, m...)
		for range m {
			plainSeqs = append(plainSeqs, s.Changes[i].Seq)
		}
	}
	for _, m := range s.Preamble(encoding) {
		msgs, seqs = append(msgs, m), append(seqs, -1)
	}
	for _, i := range sh.Order(len(plain)) {
		msgs, seqs = append(msgs, plain[i]), append(seqs, plainSeqs[i])
	}
	return msgs, seqs, nil
}
