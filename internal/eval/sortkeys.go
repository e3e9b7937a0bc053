package eval

import (
	"encoding/binary"
	"encoding/json"
	"slices"
	"sort"
	"strings"
)

// sortKeys sorts keys as slices.Sort does, and raws (nil, or as long as
// keys) along with them; faster for the thousands of keys of a document:
// comparison sorting of strings that share a long prefix ("flag-00017",
// "checkout-…") was a fifth of the time a document took to load. Each key
// is reduced to the 8 bytes after the prefix every key shares, as a
// big-endian integer (a shorter key padded with zeros, which sorts it
// before its extensions); the integers are radix sorted, and only keys
// whose integers tie are compared as strings.
//
// Compile sorts a document's flags with their JSON: looking each one up in
// the document's map again cost as much as the sort.
func sortKeys(keys []string, raws []json.RawMessage) {
	n := len(keys)
	if n < 256 {
		sort.Sort(keysAndRaws{keys, raws})
		return
	}
	common := commonPrefix(keys)
	a, b := make([]keyHead, n), make([]keyHead, n)
	var diff uint64 // the bits in which some heads differ
	for i, k := range keys {
		var buf [8]byte
		copy(buf[:], k[common:])
		a[i] = keyHead{binary.BigEndian.Uint64(buf[:]), int32(i)}
		diff |= a[i].head ^ a[0].head
	}
	a = radixSort(a, b, diff)
	sortTies(a, keys)
	// Put keys[a[j].i] (and its raw) at j, one cycle of the permutation
	// at a time, marking the places done.
	for start := range a {
		if a[start].i < 0 {
			continue
		}
		k, r := keys[start], json.RawMessage(nil)
		if raws != nil {
			r = raws[start]
		}
		for j := start; ; {
			from := int(a[j].i)
			a[j].i = -1
			if from == start {
				keys[j] = k
				if raws != nil {
					raws[j] = r
				}
				break
			}
			keys[j] = keys[from]
			if raws != nil {
				raws[j] = raws[from]
			}
			j = from
		}
	}
}

// keysAndRaws sorts keys and raws (nil or as long) by key.
type keysAndRaws struct {
	keys []string
	raws []json.RawMessage
}

func (s keysAndRaws) Len() int           { return len(s.keys) }
func (s keysAndRaws) Less(i, j int) bool { return s.keys[i] < s.keys[j] }
func (s keysAndRaws) Swap(i, j int) {
	s.keys[i], s.keys[j] = s.keys[j], s.keys[i]
	if s.raws != nil {
		s.raws[i], s.raws[j] = s.raws[j], s.raws[i]
	}
}

// keyHead is the 8 bytes after the prefix all keys share of the key at i.
type keyHead struct {
	head uint64
	i    int32
}

// commonPrefix is the length of the prefix every key shares.
func commonPrefix(keys []string) int {
	common := len(keys[0])
	for _, k := range keys[1:] {
		i := 0
		for i < common && i < len(k) && k[i] == keys[0][i] {
			i++
		}
		common = i
	}
	return common
}

// radixSort sorts a by head, least significant byte first, skipping the
// bytes in which all heads agree (diff); each pass is stable and moves the
// entries between a and b. It returns the sorted one.
func radixSort(a, b []keyHead, diff uint64) []keyHead {
	for shift := uint(0); shift < 64; shift += 8 {
		if (diff>>shift)&0xff == 0 {
			continue
		}
		var count [257]int
		for i := range a {
			count[(a[i].head>>shift)&0xff+1]++
		}
		for d := 1; d < 257; d++ {
			count[d] += count[d-1]
		}
		for i := range a {
			d := (a[i].head >> shift) & 0xff
			b[count[d]] = a[i]
			count[d]++
		}
		a, b = b, a
	}
	return a
}

// sortTies sorts the runs of a, sorted by head, whose heads are the same:
// the rest of their keys decides.
func sortTies(a []keyHead, keys []string) {
	for i := 0; i < len(a); {
		j := i + 1
		for j < len(a) && a[j].head == a[i].head {
			j++
		}
		if j-i > 1 {
			slices.SortFunc(a[i:j], func(x, y keyHead) int { return strings.Compare(keys[x.i], keys[y.i]) })
		}
		i = j
	}
}
