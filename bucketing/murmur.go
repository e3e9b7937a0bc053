package bucketing

import "math/bits"

// murmur computes MurmurHash3_x86_32 (seed 0), Austin Appleby's 32-bit
// MurmurHash3 as published in SMHasher, with its 4-byte blocks read
// little-endian on every host, over an input given in parts: Bucket hashes
// salt, ":" and value in turn, so that no input needs a buffer (a fixed
// stack buffer must be zeroed on every call; a heap one allocates), and a
// rollout hashes its salt once (Salted).
//
// The package carries its own short implementation rather than calling
// github.com/spaolacci/murmur3 (v1.1.0, the latest), whose Sum32 has two open
// defects that matter to an SDK: it walks the input with uintptr arithmetic
// that makes every program built with -race (which turns on checkptr) die with
// "fatal error: checkptr: pointer arithmetic result points to invalid
// allocation" (spaolacci/murmur3#34), and it loads blocks in native byte
// order, so big-endian hosts get other buckets than every other SDK
// (spaolacci/murmur3#25). The tests check it against published reference
// values, against vectors from an independent Python implementation, split
// at every point of its input, and, in builds without -race, against
// spaolacci/murmur3 itself.
type murmur struct {
	h    uint32
	tail uint32 // the input bytes not yet in a block, little-endian
	nt   int    // how many: 0 to 3
	n    int    // input length so far
}

// mixK scrambles a block (or the final partial block) before it enters
// the hash.
func mixK(k uint32) uint32 {
	k *= 0xcc9e2d51
	k = bits.RotateLeft32(k, 15)
	return k * 0x1b873593
}

// mixBlock folds a full block into the hash.
func mixBlock(h, k uint32) uint32 {
	h ^= mixK(k)
	h = bits.RotateLeft32(h, 13)
	return h*5 + 0xe6546b64
}

func (m *murmur) writeString(p string) {
	m.n += len(p)
	for m.nt > 0 && len(p) > 0 { // complete the block a previous part began
		m.tail |= uint32(p[0]) << (8 * m.nt)
		m.nt++
		p = p[1:]
		if m.nt == 4 {
			m.h = mixBlock(m.h, m.tail)
			m.tail, m.nt = 0, 0
		}
	}
	h := m.h // a local, so the loop keeps it in a register
	for ; len(p) >= 4; p = p[4:] {
		h = mixBlock(h, uint32(p[0])|uint32(p[1])<<8|uint32(p[2])<<16|uint32(p[3])<<24)
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
		h ^= mixK(m.tail)
	}
	h ^= uint32(m.n) // the length modulo 2^32, as the reference's int len
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}
