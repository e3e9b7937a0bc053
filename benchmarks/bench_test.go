package benchmarks

import (
	"errors"
	"runtime"
	"testing"
)

var sink int

// BenchmarkScenarios times S1–S8 in every library. Each case is checked
// (Check) before the timer starts; n/a cases are skipped.
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
					if err := Check(s, c); err != nil {
						b.Fatal(err)
					}
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

// LoadFlags is the size of the load benchmark's document.
const LoadFlags = 10000

// BenchmarkLoad10000 times building a ready client from a 10,000-flag
// document in each library's own format (bytes in, evaluations possible
// out), and reports the heap the loaded client holds per 1,000 flags:
// HeapAlloc after a full GC, with the client alive, minus HeapAlloc after a
// full GC before the load.
func BenchmarkLoad10000(b *testing.B) {
	for _, lib := range Libraries() {
		b.Run(lib.Slug(), func(b *testing.B) {
			doc, err := lib.LoadDoc(LoadFlags)
			if err != nil {
				b.Fatal(err)
			}
			before := heapInUse()
			l, err := lib.Load(doc)
			if err != nil {
				b.Fatal(err)
			}
			after := heapInUse()
			checkLoaded(b, l, LoadFlags)
			runtime.KeepAlive(l)
			l.Close()
			held := float64(int64(after)-int64(before)) / (LoadFlags / 1000)
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
		})
	}
}
