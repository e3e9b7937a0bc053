package main

import (
	"io"
	"testing"
)

// TestReleaseChannels: beta users get the train's features at once; stable
// users get none before the promotion, about 10 % and 50 % during it, all
// after; a killed feature stays off for everyone; and each user sees the
// train's features together (the roll-up).
func TestReleaseChannels(t *testing.T) {
	shares, err := run(io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ lo, hi int }{{0, 0}, {60, 140}, {440, 560}, {1000, 1000}}
	for i, s := range shares {
		if s.Beta["new-search"] != s.BetaN || s.Beta["dark-mode"] != s.BetaN {
			t.Errorf("%s: beta users see %v, want every feature", s.At, s.Beta)
		}
		n := s.Stable["new-search"]
		if n < want[i].lo || n > want[i].hi {
			t.Errorf("%s: %d stable users see new-search, want %d..%d", s.At, n, want[i].lo, want[i].hi)
		}
		if s.Stable["dark-mode"] != n {
			t.Errorf("%s: new-search %d and dark-mode %d: a train's features go together", s.At, n, s.Stable["dark-mode"])
		}
		if s.Stable["bulk-export"]+s.Beta["bulk-export"] != 0 {
			t.Errorf("%s: the killed feature is on for someone", s.At)
		}
	}
}
