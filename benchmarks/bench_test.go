package benchmarks

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"testing"
)

var sink int

// checked holds the scenario/library cells whose Setup has passed Check in
// this process. A benchmark body runs several times (while b.N ramps up,
// and once per -count round) and R1's check evaluates 300,000 pairs; a
// library's Setup builds the same case every time, so one check stands
// for all.
var checked = map[string]bool{}

// BenchmarkScenarios times S1–S8 and R1 in every library. Each case is
// checked (Check) before the timer starts; n/a cases are skipped.
func BenchmarkScenarios(b *testing.B) {
	for _, s := range Scenarios() {
		b.Run(string(s), func(b *testing.B) {
			for _, lib := range Libraries() {
				b.Run(lib.Slug(), func(b *testing.B) {
					c, err := lib.Setup(s)
					if errors.Is(err, ErrNotApplicable) {
						b.Skip(err)
					}
					if err != nil {
						b.Fatal(err)
					}
					defer c.Close()
					if cell := string(s) + "/" + lib.Name; !checked[cell] {
						if err := Check(s, c); err != nil {
							b.Fatal(err)
						}
						checked[cell] = true
					}
					// The setup's garbage is collected now rather than by a
					// collection running beside the timed loop.
					runtime.GC()
					b.ReportAllocs()
					b.ResetTimer()
					if c.All != nil {
						for i := 0; i < b.N; i++ {
							sink += c.All(false)
						}
						return
					}
					n := 0
					for i := 0; i < b.N; i++ {
						if c.Eval(i) {
							n++
						}
					}
					sink += n
				})
			}
		})
	}
}

// BenchmarkFlagstreamAllFlags is S8 in flagstream with AllFlags, which
// returns fresh Evaluations per call (two allocations whatever the number
// of flags), for comparison with AppendAllFlags into a reused buffer.
func BenchmarkFlagstreamAllFlags(b *testing.B) {
	c, err := openRendered(S8AllFlags1000, flagstreamDoc, flagstreamClient)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx, user := context.Background(), fsUser()
	if n := countTrue(slices.Values(c.AllFlags(ctx, user).AppendTo(nil)), isTrueResult); n != AllFlagsCount {
		b.Fatalf("AllFlags: %d of %d flags true, want all", n, AllFlagsCount)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sink += c.AllFlags(ctx, user).Len()
	}
}

// LoadFlags is the size of the load benchmark's document.
const LoadFlags = 10000

// BenchmarkLoad10000 times building a ready client from a 10,000-flag
// document in each library's own format (bytes in, evaluations possible
// out), and reports the heap a loaded client holds per 1,000 flags (see
// heldPer1000).
func BenchmarkLoad10000(b *testing.B) {
	for _, lib := range Libraries() {
		b.Run(lib.Slug(), func(b *testing.B) { benchmarkLoad(b, lib) })
	}
}

// BenchmarkLoad10000Distinct is BenchmarkLoad10000 for flagstream with a
// distinct version in every flag (see FlagstreamDistinct).
func BenchmarkLoad10000Distinct(b *testing.B) { benchmarkLoad(b, FlagstreamDistinct()) }

func benchmarkLoad(b *testing.B, lib Library) {
	held := heldPer1000(b, lib)
	doc, err := lib.LoadDoc(LoadFlags)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		l, err := lib.Load(doc)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		l.Close()
		b.StartTimer()
	}
	b.ReportMetric(held, "heapB/1000flags")
}

// heldPer1000 is the heap a client loaded with LoadFlags flags holds, per
// 1,000 flags: HeapAlloc after a full GC with the client alive and the
// document bytes dropped by the caller, minus HeapAlloc after a full GC
// before the document was made. The document counts only when the client
// keeps it; bytes that only the harness keeps (the payload of Unleash's
// in-process server, go-feature-flag's in-memory retriever) do not.
func heldPer1000(tb testing.TB, lib Library) float64 {
	before := heapInUse()
	l := loadOnce(tb, lib)
	after := heapInUse()
	checkLoaded(tb, l, LoadFlags)
	harness := 0
	if h, ok := l.(interface{ harnessBytes() int }); ok {
		harness = h.harnessBytes()
	}
	l.Close()
	return float64(int64(after)-int64(before)-int64(harness)) / (LoadFlags / 1000)
}

// loadOnce renders a load document and loads it; the document is garbage
// once it returns unless the client keeps it.
func loadOnce(tb testing.TB, lib Library) Loaded {
	l, err := openRendered(LoadFlags, lib.LoadDoc, lib.Load)
	if err != nil {
		tb.Fatal(err)
	}
	return l
}
