package experiment

import (
	"strconv"
	"testing"
)

func BenchmarkAggregatorExposure(b *testing.B) {
	a := NewAggregator()
	units := benchUnits(100000)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a.Exposure("f", units[i%len(units)], i%2, true, int64(i))
	}
}

func BenchmarkAggregatorTrack(b *testing.B) {
	a := NewAggregator()
	units := benchUnits(100000)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a.Track("m", units[i%len(units)], 1, true, int64(i))
	}
}

// benchUnits is n unit keys, made before the timer starts so that the
// benchmarks measure the aggregator alone.
func benchUnits(n int) []string {
	units := make([]string, n)
	for i := range units {
		units[i] = "user-" + strconv.Itoa(i)
	}
	return units
}

// BenchmarkReport100kUnits: the report of a flag with 100,000 units and
// two metrics, what the guard loop computes every few seconds.
func BenchmarkReport100kUnits(b *testing.B) {
	a := NewAggregator()
	for i := range 100000 {
		u := "user-" + strconv.Itoa(i)
		a.Exposure("f", u, i%2, true, int64(i))
		if i%10 == 0 {
			a.Track("errors", u, 0, false, int64(i)+5)
		}
		if i%7 == 0 {
			a.Track("revenue", u, 12.5, true, int64(i)+9)
		}
	}
	info := FlagInfo{Key: "f", Variations: 2, SRM: []Weight{{0, 50000}, {1, 50000}}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if r := a.Report(info); r.Units(0) != 50000 {
			b.Fatal(r.Units(0))
		}
	}
}
