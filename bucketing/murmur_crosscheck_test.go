// spaolacci/murmur3 v1.1.0 crashes under checkptr, which -race turns on
// (spaolacci/murmur3#34), so this cross-check only runs without -race.

//go:build !race

package bucketing

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	spaolacci "github.com/spaolacci/murmur3"
)

// TestMurmur32MatchesSpaolacci compares murmur32 with spaolacci/murmur3's
// Sum32 on inputs of every length from 0 to 1100 bytes, at every alignment.
func TestMurmur32MatchesSpaolacci(t *testing.T) {
	if !littleEndianHost() {
		t.Skip("spaolacci/murmur3 gives non-reference hashes on big-endian hosts (spaolacci/murmur3#25)")
	}
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 1104)
	for i := range buf {
		buf[i] = byte(r.Uint32())
	}
	for n := 0; n <= 1100; n++ {
		for off := range 4 {
			data := buf[off : off+n]
			if got, want := murmur32(data), spaolacci.Sum32(data); got != want {
				t.Fatalf("murmur32(%d bytes at offset %d) = %#08x, spaolacci.Sum32 = %#08x", n, off, got, want)
			}
		}
	}
}

func littleEndianHost() bool {
	return binary.NativeEndian.Uint16([]byte{1, 0}) == 1
}
