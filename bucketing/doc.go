// Package bucketing is the arithmetic that assigns a context to a variation
// of a percentage rollout: the bucket of an attribute value, the variation a
// bucket falls into, and the weights of a progressive (scheduled) rollout at a
// given instant.
//
// Every flagstream SDK, in whatever language, must put every user in the same
// bucket and serve them the same variation, or a user would flip between
// variations depending on which service evaluated the flag. So none of this
// is an implementation detail: it is the contract of SPEC §1 (Rollout) and §2,
// and it is spelled out below in enough detail to reproduce bit for bit.
// testdata/bucketing/vectors.json holds known answers for other SDKs to test
// against; testdata/bucketing/gen_vectors.py regenerates it from an
// independent Python implementation.
//
// # Buckets
//
// The bucket of a value under a salt is
//
//	input  = salt + ":" + value        // the UTF-8 bytes, concatenated
//	h      = MurmurHash3_x86_32(input, seed 0)
//	bucket = h mod 100000              // 0 .. 99999, see Scale
//
// Details that ports get wrong:
//
//   - The input is bytes: strings are hashed as UTF-8, never as UTF-16 code
//     units (JavaScript, Java, C# strings), and are not Unicode-normalized:
//     "é" as one code point and as "e" plus a combining accent are different
//     inputs.
//   - Nothing is escaped: salt "a:b" with value "c" is the same input as salt
//     "a" with value "b:c". An empty salt or value still has its ":".
//   - MurmurHash3_x86_32 reads 4-byte blocks little-endian on every host, and
//     h is unsigned: take it as uint32 (not a negative int32) before the mod.
//     For example "new-checkout:user-123" hashes to 2171525887, bucket 25887.
//   - An integer value is written in decimal: optional '-', then digits, no
//     leading zeros, no '+', no exponent, no fraction ("42", "-7",
//     "-9223372036854775808"). BucketInt does this without allocating. A
//     number that is not an integer, and any other non-string value, is not
//     bucketed by this package: the evaluator gives bucket 0 and reports
//     bucketFallback (SPEC §2).
//
// The salt is the rollout's salt, else the flag's, else the flag key (for a
// segment rule: the rule's salt, else the segment key); the value is the
// rollout's bucketBy attribute, "key" by default. The evaluator picks both;
// this package only hashes them.
//
// # Choosing a variation
//
// Weights are in units of 0.001 % (Scale = 100000 is 100 %). Walking the
// variations in order with a running sum of their weights, the bucket falls
// into the first variation whose running sum is greater than the bucket.
// Variation i therefore owns the buckets [w0+...+w(i-1), w0+...+wi); a weight
// of 0 owns none. See Choose.
//
// A segment rule with a weight w includes exactly the contexts whose bucket is
// below w.
//
// # Progressive rollouts
//
// A schedule is a list of steps, step i taking effect at the instant at[i]
// (Unix milliseconds) with the weights steps[i]. At instant t (ScheduleWeights):
//
//   - before the first step, the first step's weights apply;
//   - at or after the last step, the last step's weights apply;
//   - from step A (at tA) until the next step B (at tB), every variation but
//     the last has the interpolated weight below, and the last variation has
//     100000 minus the sum of the others.
//
// The interpolated weight of a variation with weight wA in step A and wB in
// step B is (see Interpolate)
//
//	wA + ((wB - wA) * (t - tA)) / (tB - tA)
//
// computed in 64-bit signed integers, the division truncating toward zero (as
// Go, C, Java and Rust's / do; Python's // and JavaScript's Math.floor do
// not).
//
// Truncating toward zero matters when a weight shrinks: from 100000 to 0 over
// three milliseconds, one millisecond in, the weight is
// 100000 + (-100000 / 3) = 100000 - 33333 = 66667, where flooring would give
// 66666. Giving the last variation the remainder keeps the weights summing to
// exactly 100000.
//
// Because a context's bucket never changes, the first and the last variation
// (so either variation of a two-way rollout) keep every context they already
// had while their weight only grows: their range of buckets only widens. A
// variation in the middle can lose contexts to a neighbour even while its own
// weight grows, because the variations before it can shrink.
//
// # Performance
//
// Bucket, BucketInt, Choose, Interpolate and ScheduleWeights never allocate:
// Bucket hashes salt, ":" and value in turn rather than joining them. All of them
// are pure functions, safe for concurrent use.
package bucketing
