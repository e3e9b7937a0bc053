package shop_test

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/flagstream/flags"
	shop "github.com/flagstream/flags/examples/testing"
	"github.com/flagstream/flags/flagstest"
)

// A rollout's measured share is a statistical quantity: with n distinct
// keys whose buckets behave as independent uniform draws (murmur3), the
// number of keys served the new variation is Binomial(n, p), whose standard
// deviation as a share is sqrt(p(1-p)/n). For p = 25 % and n = 10,000 that
// is 0.433 %; the tests allow 4 standard deviations, ±1.73 %, which a
// correct implementation misses with probability about 6e-5 for a random
// key set. The keys here are fixed, so the outcome is deterministic: the
// tolerance only has to be wide enough for a correct implementation and
// narrow enough that a wrong one (weights swapped: 75 %; a variation
// dropped: 0 %; buckets out of range: 100 %) fails by far.
const rolloutKeys = 10000

func tolerance(p float64) float64 { return 4 * math.Sqrt(p*(1-p)/rolloutKeys) }

// newCheckoutUsers returns which of the keys user-0 .. user-9999 the
// handler gives the new checkout.
func newCheckoutUsers(t *testing.T, ev flags.Evaluator) []bool {
	t.Helper()
	h := shop.Checkout{Flags: ev}
	out := make([]bool, rolloutKeys)
	for i := range out {
		out[i] = get(t, h, fmt.Sprint("user=user-", i)).Checkout == "new"
	}
	return out
}

func share(in []bool) float64 {
	n := 0
	for _, b := range in {
		if b {
			n++
		}
	}
	return float64(n) / float64(len(in))
}

func TestRolloutDistribution(t *testing.T) {
	td := flagstest.New(t, flagstest.Bool(shop.FlagNewCheckout, false).
		Fallthrough(flagstest.Rollout().Weight(0, 75000).Weight(1, 25000)))
	quarter := newCheckoutUsers(t, td.Client)
	got, want, tol := share(quarter), 0.25, tolerance(0.25)
	t.Logf("25 %% rollout: %.2f %% of %d users (allowed %.2f %% ± %.2f %%)", 100*got, rolloutKeys, 100*want, 100*tol)
	if math.Abs(got-want) > tol {
		t.Errorf("25 %% rollout served the new checkout to %.2f %% of users, want %.2f %% ± %.2f %%", 100*got, 100*want, 100*tol)
	}

	// Growing the share keeps everyone who had the new checkout (SPEC §2).
	td.Set(flagstest.Bool(shop.FlagNewCheckout, false).
		Fallthrough(flagstest.Rollout().Weight(0, 50000).Weight(1, 50000)))
	half := newCheckoutUsers(t, td.Client)
	if got, tol := share(half), tolerance(0.5); math.Abs(got-0.5) > tol {
		t.Errorf("50 %% rollout served %.2f %%, want 50 %% ± %.2f %%", 100*got, 100*tol)
	}
	for i := range quarter {
		if quarter[i] && !half[i] {
			t.Fatalf("user-%d had the new checkout at 25 %% and lost it at 50 %%", i)
		}
	}
}

// TestScheduledRollout: halfway through a week-long ramp from 0 % to
// 100 %, half the users have the new checkout. The clock is fixed with a
// client of its own.
func TestScheduledRollout(t *testing.T) {
	dec1 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	td := flagstest.New(t, flagstest.Bool(shop.FlagNewCheckout, false).
		Fallthrough(flagstest.Rollout().Step(dec1, 100000, 0).Step(dec1.AddDate(0, 0, 7), 0, 100000)))
	for _, tt := range []struct {
		at   time.Time
		want float64
	}{
		{dec1.Add(-time.Hour), 0},
		{dec1.Add(84 * time.Hour), 0.5},
		{dec1.AddDate(0, 0, 8), 1},
	} {
		client := td.NewClient(flags.WithClock(func() time.Time { return tt.at }))
		got, tol := share(newCheckoutUsers(t, client)), tolerance(tt.want)
		if math.Abs(got-tt.want) > tol {
			t.Errorf("at %v: %.2f %% have the new checkout, want %.0f %% ± %.2f %%", tt.at, 100*got, 100*tt.want, 100*tol)
		}
	}
}
