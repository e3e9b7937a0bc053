package main

import (
	"strings"
	"testing"
)

func TestParseAndMedian(t *testing.T) {
	in := `goos: linux
BenchmarkScenarios/S1_BoolOn/flagstream-2   	 4544658	        77.36 ns/op	       0 B/op	       0 allocs/op
BenchmarkScenarios/S1_BoolOn/flagstream-2   	 4544658	        70.00 ns/op	       0 B/op	       0 allocs/op
BenchmarkScenarios/S1_BoolOn/flagstream-2   	 4544658	        90.00 ns/op	       0 B/op	       0 allocs/op
BenchmarkScenarios/S1_BoolOn/LD_SDK         	  673618	       673.1 ns/op	       0 B/op	       2 allocs/op
BenchmarkLoad10000/ConfigCat-2  	       4	  59210354 ns/op	  13.01 MB/s	    614262 heapB/1000flags	11559560 B/op	  245152 allocs/op
PASS
`
	got := map[string]samples{}
	if err := parse(strings.NewReader(in), got); err != nil {
		t.Fatal(err)
	}
	if n := len(got["Scenarios/S1_BoolOn/flagstream"]["ns/op"]); n != 3 {
		t.Fatalf("flagstream S1 has %d ns/op samples, want 3", n)
	}
	if m := median(got["Scenarios/S1_BoolOn/flagstream"]["ns/op"]); m != 77.36 {
		t.Errorf("median = %v, want 77.36", m)
	}
	if a := got["Scenarios/S1_BoolOn/LD_SDK"]["allocs/op"]; len(a) != 1 || a[0] != 2 {
		t.Errorf("LD_SDK allocs/op = %v, want [2] (a name without a -N suffix)", a)
	}
	if h := got["Load10000/ConfigCat"]["heapB/1000flags"]; len(h) != 1 || h[0] != 614262 {
		t.Errorf("ConfigCat heapB/1000flags = %v, want [614262]", h)
	}
	if m := median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("median of an even count = %v, want 2.5", m)
	}
}

func TestFormatting(t *testing.T) {
	for _, tc := range []struct {
		ns   float64
		want string
	}{
		{77.36, "77.4 ns"},
		{4592, "4,592 ns"},
		{359076, "359 µs"},
		{2449873, "2.45 ms"},
		{162480757, "162 ms"},
	} {
		if got := duration(tc.ns); got != tc.want {
			t.Errorf("duration(%v) = %q, want %q", tc.ns, got, tc.want)
		}
	}
	if got := group(1234567); got != "1,234,567" {
		t.Errorf("group(1234567) = %q", got)
	}
}
