package experiment

import (
	"strconv"
	"testing"
)

func BenchmarkAggregatorExposure(b *testing.B) {
	benchRecords(b, func(a *Aggregator, unit string, i int) { a.Exposure("f", unit, i%2, true, int64(i)) })
}

func BenchmarkAggregatorTrack(b *testing.B) {
	benchRecords(b, func(a *Aggregator, unit string, i int) { a.Track("m", unit, 1, true, int64(i)) })
}

// benchRecords times record, the i-th call of which records for unit
// (one of 100,000, in turn) into a. The unit keys are made before the
// timer starts so that the benchmark measures the aggregator alone.
func benchRecords(b *testing.B, record func(a *Aggregator, unit string, i int)) {
	a := NewAggregator()
	units := make([]string, 100000)
	for i := range units {
		units[i] = "user-" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		record(a, units[i%len(units)], i)
	}
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

// BenchmarkReportManyMetrics: 100,000 units and 2,000 metrics of one event
// from one unit each, what a few batches from any SDK token can send (SPEC
// §13): the report costs the events, not units × metrics.
func BenchmarkReportManyMetrics(b *testing.B) {
	a := NewAggregator()
	for i := range 100000 {
		a.Exposure("f", "user-"+strconv.Itoa(i), i%2, true, int64(i))
	}
	for m := range 2000 {
		a.Track("metric-"+strconv.Itoa(m), "user-7", 1, true, 10)
	}
	info := FlagInfo{Key: "f", Variations: 2, SRM: []Weight{{0, 50000}, {1, 50000}}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if r := a.Report(info); len(r.Metrics) != 2000 {
			b.Fatal(len(r.Metrics))
		}
	}
}
