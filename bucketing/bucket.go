package bucketing

import "strconv"

// Scale is the number of buckets and the total of a rollout's weights: weights
// and buckets are in units of 0.001 %, so 100000 is 100 %.
const Scale = 100000

// Bucket returns the bucket of value under salt (SPEC §2):
// MurmurHash3_x86_32(salt + ":" + value, seed 0) mod Scale, in [0, Scale).
// The strings are hashed as their bytes (UTF-8 for text), without any
// normalization or escaping. It never allocates: the parts are hashed in
// turn, not joined.
func Bucket(salt, value string) int {
	var m murmur
	m.writeString(salt)
	m.writeString(":")
	return m.bucket(value)
}

// BucketInt returns Bucket(salt, strconv.FormatInt(v, 10)): the bucket of an
// integer attribute, written in decimal with a leading '-' when negative and
// no exponent, fraction, '+' sign or leading zeros. It never allocates.
func BucketInt(salt string, v int64) int {
	var digits [20]byte // len("-9223372036854775808"); the string below does not escape: it stays on the stack
	return Bucket(salt, string(strconv.AppendInt(digits[:0], v, 10)))
}

// Salted is a salt prepared for bucketing: the hash of salt + ":" is
// computed once (per rollout, when a snapshot is compiled) rather than with
// every evaluation. The zero Salted is not ready; use NewSalted.
type Salted struct {
	m     murmur
	ready bool
}

// NewSalted prepares salt.
func NewSalted(salt string) Salted {
	s := Salted{ready: true}
	s.m.writeString(salt)
	s.m.writeString(":")
	return s
}

// Ready reports whether s was made by NewSalted.
func (s *Salted) Ready() bool { return s.ready }

// Bucket is Bucket(salt, value) for the salt s was prepared with.
func (s *Salted) Bucket(value string) int {
	m := s.m
	return m.bucket(value)
}

// BucketInt is BucketInt(salt, v) for the salt s was prepared with.
func (s *Salted) BucketInt(v int64) int {
	var digits [20]byte
	return s.Bucket(string(strconv.AppendInt(digits[:0], v, 10)))
}

// bucket finishes the hash with value.
func (m *murmur) bucket(value string) int {
	m.writeString(value)
	return int(m.sum() % Scale)
}

// Choose returns the index of the variation that bucket falls into (SPEC §2):
// walking weights in order with a running sum, the first index whose running
// sum is greater than bucket. When there is none (the weights sum to bucket
// or less) it returns len(weights)-1, the last index; for an empty weights it
// therefore returns -1. Weights of zero are never chosen unless they are last
// and nothing before them was.
func Choose(weights []int64, bucket int) int {
	b := int64(bucket)
	var sum int64
	for i, w := range weights {
		sum += w
		if sum > b {
			return i
		}
	}
	return len(weights) - 1
}
