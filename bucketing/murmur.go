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

// murmur is murmur32 over an input given in parts: Bucket hashes
// salt + ":" + value without joining them, so that no input length needs a
// buffer (a fixed stack buffer must be zeroed on every call; a heap one
// allocates).
type murmur struct {
	h    uint32
	tail uint32 // the input bytes not yet in a block, little-endian
	nt   int    // how many: 0 to 3
	n    int    // input length so far
}

func (m *murmur) block(k uint32) {
	k *= 0xcc9e2d51
	k = bits.RotateLeft32(k, 15)
	k *= 0x1b873593
	m.h ^= k
	m.h = bits.RotateLeft32(m.h, 13)
	m.h = m.h*5 + 0xe6546b64
}

func (m *murmur) writeString(p string) {
	m.n += len(p)
	for m.nt > 0 && len(p) > 0 { // complete the block a previous part began
		m.tail |= uint32(p[0]) << (8 * m.nt)
		m.nt++
		p = p[1:]
		if m.nt == 4 {
			m.block(m.tail)
			m.tail, m.nt = 0, 0
		}
	}
	h := m.h // a local, so the loop keeps it in a register
	for ; len(p) >= 4; p = p[4:] {
		k := uint32(p[0]) | uint32(p[1])<<8 | uint32(p[2])<<16 | uint32(p[3])<<24
		k *= 0xcc9e2d51
		k = bits.RotateLeft32(k, 15)
		k *= 0x1b873593
		h ^= k
		h = bits.RotateLeft32(h, 13)
		h = h*5 + 0xe6546b64
	}
	m.h = h
	for i := 0; i < len(p); i++ {
		m.tail |= uint32(p[i]) << (8 * m.nt)
		m.nt++
	}
}

func (m *murmur) sum() uint32 {
	h := m.h
	if m.nt > 0 {
		k := m.tail * 0xcc9e2d51
		k = bits.RotateLeft32(k, 15)
		k *= 0x1b873593
		h ^= k
	}
	h ^= uint32(m.n)
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}
