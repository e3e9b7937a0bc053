package eval

import (
	"testing"
	"time"
)

// TestParseRFC3339: RFC 3339 §5.6's date-time, no more (time.Parse takes a
// comma before the fraction and offsets past 23:59) and no less (it refuses
// a lower-case t or z).
func TestParseRFC3339(t *testing.T) {
	for s, want := range map[string]string{
		"2026-06-01T00:00:00Z":              "2026-06-01T00:00:00Z",
		"2026-06-01t00:00:00z":              "2026-06-01T00:00:00Z",
		"2026-06-01T00:00:00.5Z":            "2026-06-01T00:00:00.5Z",
		"2026-06-01T00:00:00.123456789012Z": "2026-06-01T00:00:00.123456789Z",
		"2026-06-01T01:30:00+01:30":         "2026-06-01T00:00:00Z",
		"2026-05-31T00:01:00-23:59":         "2026-06-01T00:00:00Z",
		"2024-02-29T23:59:59-00:00":         "2024-02-29T23:59:59Z",
	} {
		got, err := ParseRFC3339(s)
		if err != nil {
			t.Errorf("%s: %v", s, err)
			continue
		}
		if w, _ := time.Parse(time.RFC3339Nano, want); !got.Equal(w) {
			t.Errorf("%s: %v, want %v", s, got, w)
		}
	}
	for _, s := range []string{
		"2026-06-01T00:00:00,5Z", "2026-06-01T00:00:00+24:00", "2026-06-01T00:00:00+00:60",
		"2026-06-01T00:00:00", "2026-06-01 00:00:00Z", "2026-06-01T00:00:00.Z", "2026-6-01T00:00:00Z",
		"2026-06-01T24:00:00Z", "2026-02-30T00:00:00Z", "2026-06-01T00:00:00+0100", "2026-06-01T00:00:00+01",
		"2026-06-01T00:00:00ZZ", "2026-06-01T00:00:00Z ", "+2026-06-01T00:00:00Z", "", "2026-06-01",
	} {
		if got, err := ParseRFC3339(s); err == nil {
			t.Errorf("%q: accepted as %v, not RFC 3339", s, got)
		}
	}
}
