package eval

import (
	"encoding/binary"
	"slices"
)

// sortKeys sorts keys as slices.Sort does, faster for the thousands of keys
// of a document: comparison sorting of strings that share a long prefix
// ("flag-00017", "checkout-…") was a fifth of the time a document took to
// load. Each key is reduced to the 8 bytes after the prefix every key
// shares, as a big-endian integer (a shorter key padded with zeros, which
// sorts it before its extensions); the integers are radix sorted, and only
// keys whose integers tie are compared as strings.
//
// Hot loop (complexity above 15 on purpose): the radix sort of every
// snapshot's keys.
func sortKeys(keys []string) {
	n := len(keys)
	if n < 256 {
		slices.Sort(keys)
		return
	}
	common := len(keys[0])
	for _, k := range keys[1:] {
		i := 0
		for i < common && i < len(k) && k[i] == keys[0][i] {
			i++
		}
		common = i
	}
	type entry struct {
		head uint64
		key  string
	}
	a, b := make([]entry, n), make([]entry, n)
	var diff uint64 // the bits in which some heads differ
	for i, k := range keys {
		var buf [8]byte
		copy(buf[:], k[common:])
		a[i] = entry{binary.BigEndian.Uint64(buf[:]), k}
		diff |= a[i].head ^ a[0].head
	}
	// Least significant digit first, a byte at a time, skipping the bytes
	// in which all heads agree; each pass is stable.
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
	for i := 0; i < n; {
		j := i + 1
		for j < n && a[j].head == a[i].head {
			j++
		}
		if j-i > 1 { // the same 8 bytes: the rest decides
			slices.SortFunc(a[i:j], func(x, y entry) int {
				switch {
				case x.key < y.key:
					return -1
				case x.key > y.key:
					return 1
				}
				return 0
			})
		}
		i = j
	}
	for i := range a {
		keys[i] = a[i].key
	}
}
