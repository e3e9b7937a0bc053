package bucketing

import (
	"encoding/binary"
	"math/bits"
)

// murmur32 returns MurmurHash3_x86_32(data, seed 0), Austin Appleby's
// 32-bit MurmurHash3 as published in SMHasher, with its 4-byte blocks read
// little-endian on every host.
//
// The package carries its own copy of this short function rather than calling
// github.com/spaolacci/murmur3 (v1.1.0, the latest), whose Sum32 has two open
// defects that matter to an SDK: it walks the input with uintptr arithmetic
// that makes every program built with -race (which turns on checkptr) die with
// "fatal error: checkptr: pointer arithmetic result points to invalid
// allocation" (spaolacci/murmur3#34), and it loads blocks in native byte
// order, so big-endian hosts get other buckets than every other SDK
// (spaolacci/murmur3#25). The tests check this function against published
// reference values, against vectors from an independent Python implementation
// and, in builds without -race, against spaolacci/murmur3 itself.
func murmur32(data []byte) uint32 {
	const (
		c1 = 0xcc9e2d51
		c2 = 0x1b873593
	)
	var h uint32 // seed 0
	n := len(data)
	for ; len(data) >= 4; data = data[4:] {
		k := binary.LittleEndian.Uint32(data)
		k *= c1
		k = bits.RotateLeft32(k, 15)
		k *= c2
		h ^= k
		h = bits.RotateLeft32(h, 13)
		h = h*5 + 0xe6546b64
	}
	var k uint32
	switch len(data) {
	case 3:
		k ^= uint32(data[2]) << 16
		fallthrough
	case 2:
		k ^= uint32(data[1]) << 8
		fallthrough
	case 1:
		k ^= uint32(data[0])
		k *= c1
		k = bits.RotateLeft32(k, 15)
		k *= c2
		h ^= k
	}
	h ^= uint32(n) // the length modulo 2^32, as the reference's int len
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}
