package experiment

import "math"

// z95 is the two-sided 95 % normal quantile SPEC §8 names.
const z95 = 1.959964

// tauShare is τ²/σ² of the mixture SPRT (SPEC §8): the prior variance of
// the effect, as a share of the per-unit variance.
const tauShare = 0.01

// comparison holds treatment-versus-control statistics on conversion rates
// (SPEC §8). Fields that are undefined are nil.
type comparison struct {
	diff, se    float64
	relative    *float64
	ci95        *[2]float64
	pValue      *float64
	sequentialP *float64
}

// compare computes SPEC §8's vsControl for conversions cT of nT treatment
// units against cC of nC control units. Both n must be positive.
func compare(cT, nT, cC, nC int64) comparison {
	pT, pC := float64(cT)/float64(nT), float64(cC)/float64(nC)
	out := comparison{diff: pT - pC}
	out.se = math.Sqrt(pT*(1-pT)/float64(nT) + pC*(1-pC)/float64(nC))
	if pC != 0 {
		r := out.diff / pC
		out.relative = &r
	}
	if out.se > 0 {
		out.ci95 = &[2]float64{out.diff - z95*out.se, out.diff + z95*out.se}
		p := math.Erfc(math.Abs(out.diff) / out.se / math.Sqrt2) // 2(1 − Φ(|z|))
		out.pValue = &p
	}
	out.sequentialP = sequentialP(out.diff, cT+cC, nT, nC)
	return out
}

// sequentialP is the always-valid p-value of the mixture SPRT (SPEC §8)
// for an observed difference of rates diff, with pooled conversions c over
// nT and nC units; nil when the pooled variance is 0.
func sequentialP(diff float64, c, nT, nC int64) *float64 {
	pooled := float64(c) / float64(nT+nC)
	sigma2 := pooled * (1 - pooled)
	v := sigma2 * (1/float64(nT) + 1/float64(nC))
	if v == 0 {
		return nil
	}
	tau2 := tauShare * sigma2
	// Λ = sqrt(V/(V+τ²)) · exp(diff²τ² / (2V(V+τ²))), in logarithms so that
	// a huge Λ does not overflow before 1/Λ rounds to 0.
	logLambda := 0.5*math.Log(v/(v+tau2)) + diff*diff*tau2/(2*v*(v+tau2))
	p := math.Min(1, math.Exp(-logLambda))
	return &p
}

// chiSquareP is the probability that a χ² variable with df degrees of
// freedom exceeds x: the regularized upper incomplete gamma Q(df/2, x/2).
func chiSquareP(x float64, df int) float64 {
	if x <= 0 {
		return 1
	}
	return upperGamma(float64(df)/2, x/2)
}

// upperGamma is the regularized upper incomplete gamma function Q(a, x),
// by its series below a+1 and its continued fraction above (Lentz's
// method), both to double precision.
func upperGamma(a, x float64) float64 {
	lg, _ := math.Lgamma(a)
	prefix := math.Exp(-x + a*math.Log(x) - lg)
	if x < a+1 {
		// P(a, x) = prefix · Σ xⁿ / (a(a+1)…(a+n)); Q = 1 − P.
		sum, term := 1/a, 1/a
		for n := 1; n < 1000; n++ {
			term *= x / (a + float64(n))
			sum += term
			if math.Abs(term) < math.Abs(sum)*1e-16 {
				break
			}
		}
		return math.Max(0, 1-prefix*sum)
	}
	const tiny = 1e-300
	b := x + 1 - a
	c := 1 / tiny
	d := 1 / b
	h := d
	for i := 1; i < 1000; i++ {
		an := -float64(i) * (float64(i) - a)
		b += 2
		d = an*d + b
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = b + an/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		delta := d * c
		h *= delta
		if math.Abs(delta-1) < 1e-16 {
			break
		}
	}
	return prefix * h
}

// exactSum adds float64s with no rounding error along the way: it keeps
// the sum as non-overlapping partials (Shewchuk's algorithm, as Python's
// math.fsum), and value rounds their exact total once. So a sum does not
// depend on the order of its additions, which follows the order of a map
// or of arrival: the same events always report the same sum and mean, on
// every replica (SPEC §8: sums are exact). The values must be finite and
// their total far from overflow (Track's bound, MaxValue, sees to it).
type exactSum struct {
	partials []float64 // increasing magnitude, non-overlapping
}

// add adds x to the sum.
func (s *exactSum) add(x float64) {
	i := 0
	for _, y := range s.partials {
		if math.Abs(x) < math.Abs(y) {
			x, y = y, x
		}
		hi := x + y
		lo := y - (hi - x)
		if lo != 0 {
			s.partials[i] = lo
			i++
		}
		x = hi
	}
	s.partials = append(s.partials[:i], x)
}

// value returns the sum, correctly rounded.
func (s *exactSum) value() float64 {
	p := s.partials
	n := len(p)
	if n == 0 {
		return 0
	}
	n--
	hi, lo := p[n], 0.0
	for n > 0 {
		x := hi
		n--
		y := p[n]
		hi = x + y
		lo = y - (hi - x)
		if lo != 0 {
			break
		}
	}
	// Round half to even across the partials below: when lo is exactly
	// half an ulp of hi and the next partial has its sign, the exact total
	// is past the halfway point.
	if n > 0 && (lo < 0 && p[n-1] < 0 || lo > 0 && p[n-1] > 0) {
		y := lo * 2
		x := hi + y
		if x-hi == y {
			hi = x
		}
	}
	return hi
}
