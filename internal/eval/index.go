package eval

import "hash/maphash"

// flagIndex finds a snapshot's flags by key. It is an open-addressing hash
// table of positions in the snapshot's flag slice, which holds the keys: 4
// to 8 bytes a flag where a map[string]*Flag takes 30 to 45 (its slots hold
// the key's string header and the pointer, at a lower load), for a lookup
// that costs the same (one hash, one probe and one key comparison most of
// the time).
type flagIndex struct {
	seed  maphash.Seed
	slots []uint32 // 1 + a position in the flags; 0: empty. A power of two long, at most half full.
}

// newFlagIndex indexes flags by their keys, which are distinct.
func newFlagIndex(flags []Flag) flagIndex {
	x := flagIndex{seed: maphash.MakeSeed()}
	if len(flags) <= smallIndex {
		return x
	}
	size := 1
	for size < 2*len(flags) {
		size <<= 1
	}
	x.slots = make([]uint32, size)
	mask := uint64(size - 1)
	for p := range flags {
		i := maphash.String(x.seed, flags[p].Key) & mask
		for x.slots[i] != 0 {
			i = (i + 1) & mask
		}
		x.slots[i] = uint32(p) + 1
	}
	return x
}

// smallIndex is the number of flags up to which find compares keys one by
// one rather than hashing (as a Go map does): hashing a key costs more than
// a few comparisons, which mostly stop at the length.
const smallIndex = 8

// find returns the flag under key, or nil.
func (x *flagIndex) find(flags []Flag, key string) *Flag {
	if len(flags) <= smallIndex {
		for i := range flags {
			if flags[i].Key == key {
				return &flags[i]
			}
		}
		return nil
	}
	mask := uint64(len(x.slots) - 1)
	for i := maphash.String(x.seed, key) & mask; ; i = (i + 1) & mask {
		p := x.slots[i]
		if p == 0 {
			return nil
		}
		if f := &flags[p-1]; f.Key == key {
			return f
		}
	}
}
