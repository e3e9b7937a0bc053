package bucketing

import "strconv"

// Scale is the number of buckets and the total of a rollout's weights: weights
// and buckets are in units of 0.001 %, so 100000 is 100 %.
const Scale = 100000

// stackInput is the longest hash input (salt + ":" + value, in bytes) that
// Bucket and BucketInt assemble in a stack buffer; longer inputs are assembled
// on the heap. The vectors in testdata/bucketing cover both sides of it.
const stackInput = 512

// Bucket returns the bucket of value under salt (SPEC §2):
// MurmurHash3_x86_32(salt + ":" + value, seed 0) mod Scale, in [0, Scale).
// The strings are hashed as their bytes (UTF-8 for text), without any
// normalization or escaping. Inputs of up to 512 bytes are hashed without
// allocating.
func Bucket(salt, value string) int {
	return bucket(salt, value)
}

// BucketInt returns Bucket(salt, strconv.FormatInt(v, 10)): the bucket of an
// integer attribute, written in decimal with a leading '-' when negative and
// no exponent, fraction, '+' sign or leading zeros. It does not allocate for
// salts of up to 491 bytes.
func BucketInt(salt string, v int64) int {
	var digits [20]byte // len("-9223372036854775808")
	return bucket(salt, strconv.AppendInt(digits[:0], v, 10))
}

// bucket hashes salt + ":" + value, assembled in a stack buffer when it fits.
func bucket[V string | []byte](salt string, value V) int {
	n := len(salt) + 1 + len(value)
	var stack [stackInput]byte
	var b []byte
	if n <= len(stack) {
		b = stack[:0]
	} else {
		b = make([]byte, 0, n)
	}
	b = append(b, salt...)
	b = append(b, ':')
	b = append(b, value...)
	return int(murmur32(b) % Scale)
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
