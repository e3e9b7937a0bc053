package bucketing

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// vector is one known-answer entry of testdata/bucketing/vectors.json, written
// by testdata/bucketing/gen_vectors.py from an independent Python MurmurHash3.
type vector struct {
	Salt   string `json:"salt"`
	Value  string `json:"value"`
	Hash   uint32 `json:"hash"`
	Bucket int    `json:"bucket"`
	Int    *int64 `json:"int"` // set when Value is the decimal form of an integer
}

func loadVectors(t *testing.T) []vector {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "testdata", "bucketing", "vectors.json"))
	if err != nil {
		t.Fatalf("reading vectors: %v", err)
	}
	var vs []vector
	if err := json.Unmarshal(data, &vs); err != nil {
		t.Fatalf("decoding vectors: %v", err)
	}
	return vs
}

func TestVectors(t *testing.T) {
	vs := loadVectors(t)
	if len(vs) < 40 {
		t.Fatalf("got %d vectors, want at least 40", len(vs))
	}
	for _, v := range vs {
		input := v.Salt + ":" + v.Value
		if v.Bucket != int(v.Hash%Scale) {
			t.Errorf("vector %q: bucket %d is not hash %d mod %d", input, v.Bucket, v.Hash, Scale)
		}
		if got := murmur32([]byte(input)); got != v.Hash {
			t.Errorf("murmur32(%q) = %#08x, want %#08x", input, got, v.Hash)
		}
		if got := Bucket(v.Salt, v.Value); got != v.Bucket {
			t.Errorf("Bucket(%q, %q) = %d, want %d", v.Salt, v.Value, got, v.Bucket)
		}
		if v.Int != nil {
			if s := strconv.FormatInt(*v.Int, 10); s != v.Value {
				t.Errorf("vector int %d has value %q, want %q", *v.Int, v.Value, s)
			}
			if got := BucketInt(v.Salt, *v.Int); got != v.Bucket {
				t.Errorf("BucketInt(%q, %d) = %d, want %d", v.Salt, *v.Int, got, v.Bucket)
			}
		}
	}
}

// longInput is a long hash input length the vectors and tests keep covering
// (earlier versions hashed inputs up to 512 bytes in a stack buffer and
// longer ones on the heap).
const longInput = 512

// TestVectorsCoverage keeps the vector file honest: it must exercise the
// cases the arithmetic is most likely to get wrong in another SDK.
func TestVectorsCoverage(t *testing.T) {
	var emptySalt, emptyValue, nonASCII, onStack, onHeap, ints, negInt bool
	tails := map[int]bool{}
	for _, v := range loadVectors(t) {
		n := len(v.Salt) + 1 + len(v.Value)
		emptySalt = emptySalt || v.Salt == ""
		emptyValue = emptyValue || v.Value == ""
		nonASCII = nonASCII || utf8.RuneCountInString(v.Salt+v.Value) != len(v.Salt+v.Value)
		onStack = onStack || n == longInput
		onHeap = onHeap || n == longInput+1
		ints = ints || v.Int != nil
		negInt = negInt || (v.Int != nil && *v.Int < 0)
		tails[n%4] = true
	}
	for name, ok := range map[string]bool{
		"empty salt": emptySalt, "empty value": emptyValue, "non-ASCII text": nonASCII,
		"input of exactly 512 bytes": onStack, "input of 513 bytes": onHeap,
		"integer value": ints, "negative integer value": negInt,
		"every length mod 4": len(tails) == 4,
	} {
		if !ok {
			t.Errorf("vectors.json has no case for %s", name)
		}
	}
}

// TestReferenceHash checks the hash itself against published
// MurmurHash3_x86_32 reference values (seed 0: those of
// testdata/eval/bucket.py, which gen_vectors.py checks too).
func TestReferenceHash(t *testing.T) {
	tests := []struct {
		in   string
		want uint32
	}{
		{"", 0},
		{"\xff\xff\xff\xff", 0x76293B50},
		{"\x21\x43\x65\x87", 0xF55B516B},
		{"\x21\x43\x65", 0x7E4A8634},
		{"\x21\x43", 0xA0F7B07A},
		{"\x21", 0x72661CF4},
		{"\x00\x00\x00\x00", 0x2362F9DE},
		{"\x00\x00\x00", 0x85F0B427},
		{"\x00\x00", 0x30F4C306},
		{"\x00", 0x514E28B7},
		{"hello", 0x248BFA47},
		{"test", 0xBA6BD213},
		{"abc", 0xB3DD93FA},
		{"Hello, world!", 0xC0363E43},
		{"The quick brown fox jumps over the lazy dog", 0x2E4FF723},
	}
	for _, tt := range tests {
		if got := murmur32([]byte(tt.in)); got != tt.want {
			t.Errorf("murmur32(%q) = %#08x, want %#08x", tt.in, got, tt.want)
		}
	}
}

func TestBucketIsSaltColonValue(t *testing.T) {
	// The separator is part of the input and nothing is escaped: only the
	// concatenation matters.
	if a, b := Bucket("a:b", "c"), Bucket("a", "b:c"); a != b {
		t.Errorf(`Bucket("a:b", "c") = %d, Bucket("a", "b:c") = %d, want equal`, a, b)
	}
	const want = 25887 // MurmurHash3_x86_32("new-checkout:user-123") = 2171525887
	if got := Bucket("new-checkout", "user-123"); got != want {
		t.Errorf(`Bucket("new-checkout", "user-123") = %d, want %d`, got, want)
	}
}

func TestBucketLengths(t *testing.T) {
	// Every input length across the stack/heap boundary, against the plain
	// allocating computation.
	for n := longInput - 8; n <= longInput+8; n++ {
		for _, salt := range []string{"", "flag", strings.Repeat("s", n-1)} {
			vlen := n - 1 - len(salt)
			if vlen < 0 {
				continue
			}
			value := strings.Repeat("v", vlen)
			want := int(murmur32([]byte(salt+":"+value)) % Scale)
			if got := Bucket(salt, value); got != want {
				t.Errorf("Bucket(salt of %d bytes, value of %d bytes) = %d, want %d", len(salt), vlen, got, want)
			}
		}
	}
}

func TestBucketInt(t *testing.T) {
	for _, v := range []int64{0, 1, -1, 9, 10, 99, 100, -100, 123456789, math.MaxInt32, math.MinInt32,
		math.MaxInt64, math.MinInt64, math.MaxInt64 - 1, math.MinInt64 + 1} {
		for _, salt := range []string{"", "int-flag", strings.Repeat("s", longInput-12), strings.Repeat("s", 600)} {
			want := Bucket(salt, strconv.FormatInt(v, 10))
			if got := BucketInt(salt, v); got != want {
				t.Errorf("BucketInt(salt of %d bytes, %d) = %d, want %d", len(salt), v, got, want)
			}
		}
	}
}

func TestChoose(t *testing.T) {
	tests := []struct {
		name    string
		weights []int64
		bucket  int
		want    int
	}{
		{"bucket 0", []int64{90000, 10000}, 0, 0},
		{"below first sum", []int64{90000, 10000}, 89999, 0},
		{"exactly at first sum", []int64{90000, 10000}, 90000, 1},
		{"last bucket", []int64{90000, 10000}, Scale - 1, 1},
		{"three ways, at second sum", []int64{20000, 30000, 50000}, 50000, 2},
		{"three ways, below second sum", []int64{20000, 30000, 50000}, 49999, 1},
		{"single variation", []int64{Scale}, 0, 0},
		{"single variation, last bucket", []int64{Scale}, Scale - 1, 0},
		{"leading zero weight, bucket 0", []int64{0, Scale}, 0, 1},
		{"zero weight in the middle is skipped", []int64{50000, 0, 50000}, 50000, 2},
		{"zero weight in the middle, below", []int64{50000, 0, 50000}, 49999, 0},
		{"all on the middle one", []int64{0, Scale, 0}, Scale - 1, 1},
		{"trailing zero weight never chosen", []int64{Scale, 0}, Scale - 1, 0},
		{"weights short of bucket+1: last index", []int64{10, 10}, 50, 1},
		{"weights exactly bucket: last index", []int64{10, 10}, 20, 1},
		{"all zero: last index", []int64{0, 0, 0}, 0, 2},
		{"empty: -1", nil, 0, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Choose(tt.weights, tt.bucket); got != tt.want {
				t.Errorf("Choose(%v, %d) = %d, want %d", tt.weights, tt.bucket, got, tt.want)
			}
		})
	}
}

// TestChooseMatchesRanges checks Choose against the ranges the weights
// describe: variation i owns buckets [sum(w[:i]), sum(w[:i+1])).
func TestChooseMatchesRanges(t *testing.T) {
	weights := []int64{12345, 0, 54321, 1, 33333}
	want := make([]int, 0, Scale)
	for i, w := range weights {
		for range w {
			want = append(want, i)
		}
	}
	if len(want) != Scale {
		t.Fatalf("weights sum to %d, want %d", len(want), Scale)
	}
	for b := range Scale {
		if got := Choose(weights, b); got != want[b] {
			t.Fatalf("Choose(%v, %d) = %d, want %d", weights, b, got, want[b])
		}
	}
}

func TestAllocs(t *testing.T) {
	long := strings.Repeat("v", longInput-len("new-checkout:"))
	longer := long + "v"
	huge := strings.Repeat("v", 100000)
	tests := []struct {
		name string
		max  float64
		f    func()
	}{
		{"Bucket", 0, func() { Bucket("new-checkout", "user-123") }},
		{"Bucket empty", 0, func() { Bucket("", "") }},
		{"Bucket 512-byte input", 0, func() { Bucket("new-checkout", long) }},
		{"Bucket 513-byte input", 0, func() { Bucket("new-checkout", longer) }},
		{"Bucket 100 KB input", 0, func() { Bucket("new-checkout", huge) }},
		{"BucketInt", 0, func() { BucketInt("new-checkout", 1234567) }},
		{"BucketInt MinInt64", 0, func() { BucketInt("new-checkout", math.MinInt64) }},
		{"Choose", 0, func() { Choose([]int64{50000, 50000}, 60000) }},
		{"ScheduleWeights", 0, func() {
			var dst [3]int64
			ScheduleWeights(dst[:], []int64{0, 1000}, [][]int64{{Scale, 0, 0}, {0, 50000, 50000}}, 500)
		}},
	}
	for _, tt := range tests {
		if got := testing.AllocsPerRun(100, tt.f); got > tt.max {
			t.Errorf("%s: %v allocations per run, want at most %v", tt.name, got, tt.max)
		}
	}
}

// FuzzBucket checks that every bucket is in [0, Scale), that Bucket agrees
// with hashing the plainly concatenated input, and that BucketInt is
// Bucket of the decimal form. Seeds live in testdata/fuzz/FuzzBucket.
func FuzzBucket(f *testing.F) {
	f.Add("new-checkout", "user-123", int64(42))
	f.Fuzz(func(t *testing.T, salt, value string, n int64) {
		b := Bucket(salt, value)
		if b < 0 || b >= Scale {
			t.Fatalf("Bucket(%q, %q) = %d, out of [0, %d)", salt, value, b, Scale)
		}
		if want := int(murmur32([]byte(salt+":"+value)) % Scale); b != want {
			t.Fatalf("Bucket(%q, %q) = %d, want %d", salt, value, b, want)
		}
		bi := BucketInt(salt, n)
		if bi < 0 || bi >= Scale {
			t.Fatalf("BucketInt(%q, %d) = %d, out of [0, %d)", salt, n, bi, Scale)
		}
		if want := Bucket(salt, strconv.FormatInt(n, 10)); bi != want {
			t.Fatalf("BucketInt(%q, %d) = %d, want Bucket of its decimal form %d", salt, n, bi, want)
		}
		prepared := NewSalted(salt)
		if got := prepared.Bucket(value); got != b {
			t.Fatalf("NewSalted(%q).Bucket(%q) = %d, want Bucket's %d", salt, value, got, b)
		}
		if got := prepared.BucketInt(n); got != bi {
			t.Fatalf("NewSalted(%q).BucketInt(%d) = %d, want BucketInt's %d", salt, n, got, bi)
		}
		if strconv.IntSize == 64 {
			if want := Bucket(salt, strconv.Itoa(int(n))); bi != want {
				t.Fatalf("BucketInt(%q, %d) = %d, want Bucket(salt, strconv.Itoa(n)) %d", salt, n, bi, want)
			}
		}
	})
}

var sink int

func BenchmarkBucket(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		sink = Bucket("new-checkout", "user-1234567")
	}
}

func BenchmarkBucket500Bytes(b *testing.B) {
	value := strings.Repeat("v", 500-len("new-checkout:"))
	b.ReportAllocs()
	for b.Loop() {
		sink = Bucket("new-checkout", value)
	}
}

func BenchmarkBucket1KiB(b *testing.B) {
	value := strings.Repeat("v", 1024-len("new-checkout:"))
	b.ReportAllocs()
	for b.Loop() {
		sink = Bucket("new-checkout", value)
	}
}

func BenchmarkBucketInt(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		sink = BucketInt("new-checkout", 1234567890)
	}
}

func BenchmarkChoose(b *testing.B) {
	weights := []int64{20000, 20000, 20000, 20000, 20000}
	b.ReportAllocs()
	for b.Loop() {
		sink = Choose(weights, 87654)
	}
}

// TestHashInParts: hashing an input part after part, split anywhere and in
// any number of parts, gives murmur32 of the whole input.
func TestHashInParts(t *testing.T) {
	data := make([]byte, 40)
	for i := range data {
		data[i] = byte(i*37 + 11)
	}
	for n := 0; n <= len(data); n++ {
		want := murmur32(data[:n])
		for i := 0; i <= n; i++ {
			for j := i; j <= n; j++ {
				var m murmur
				m.writeString(string(data[:i]))
				m.writeString(string(data[i:j]))
				m.writeString(string(data[j:n]))
				if got := m.sum(); got != want {
					t.Fatalf("length %d split at %d and %d: %#x, want %#x", n, i, j, got, want)
				}
			}
		}
	}
}

// TestSalted: a prepared salt buckets exactly as Bucket and BucketInt do,
// for salts of every length modulo 4.
func TestSalted(t *testing.T) {
	for _, salt := range []string{"", "f", "ab", "abc", "abcd", "new-checkout", strings.Repeat("s", 600)} {
		s := NewSalted(salt)
		if !s.Ready() {
			t.Fatal("NewSalted: not ready")
		}
		for _, v := range []string{"", "u", "user-123", "ünïcode", strings.Repeat("v", 1000)} {
			if got, want := s.Bucket(v), Bucket(salt, v); got != want {
				t.Errorf("salt of %d bytes, value of %d: %d, want %d", len(salt), len(v), got, want)
			}
		}
		for _, v := range []int64{0, -1, 42, math.MaxInt64, math.MinInt64} {
			if got, want := s.BucketInt(v), BucketInt(salt, v); got != want {
				t.Errorf("salt of %d bytes, int %d: %d, want %d", len(salt), v, got, want)
			}
		}
	}
	var zero Salted
	if zero.Ready() {
		t.Error("the zero Salted is ready")
	}
	s := NewSalted("new-checkout")
	if n := testing.AllocsPerRun(100, func() { s.Bucket("user-123"); s.BucketInt(-42) }); n != 0 {
		t.Errorf("Salted: %v allocations, want 0", n)
	}
}

// murmur32 hashes data whole: the form the reference values and vectors
// are written for.
func murmur32(data []byte) uint32 {
	var m murmur
	m.writeString(string(data))
	return m.sum()
}
