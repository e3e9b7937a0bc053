package eval

import (
	"encoding/json"

	"github.com/flagstream/flags/bucketing"
)

// maxStackVariations is how many rollout variations Choose handles without
// allocating; larger rollouts are legal but pay one allocation.
const maxStackVariations = 16

// Choose returns the variation index the rollout serves to bucket at time t
// (Unix milliseconds), following SPEC §1 and §2.
func (r *Rollout) Choose(bucket int, t int64) int {
	if len(r.Variations) == 0 {
		return -1
	}
	weights := r.Weights
	if len(r.Schedule) > 0 {
		if r.at == nil { // not compiled through compileFlag: derive on the fly
			r2 := *r
			r2.prepare()
			r = &r2
		}
		var buf [maxStackVariations]int64
		var dst []int64
		if len(r.Variations) <= maxStackVariations {
			dst = buf[:len(r.Variations)]
		} else {
			dst = make([]int64, len(r.Variations))
		}
		bucketing.ScheduleWeights(dst, r.at, r.steps, t)
		weights = dst
	}
	return r.Variations[bucketing.Choose(weights, bucket)]
}

// Bucket is bucketing.Bucket(r.Salt, value), with the salt's share of the
// hash computed when the rollout was compiled.
func (r *Rollout) Bucket(value string) int {
	if !r.salted.Ready() {
		return bucketing.Bucket(r.Salt, value)
	}
	return r.salted.Bucket(value)
}

// BucketInt is bucketing.BucketInt(r.Salt, v), prepared as Bucket is.
func (r *Rollout) BucketInt(v int64) int {
	if !r.salted.Ready() {
		return bucketing.BucketInt(r.Salt, v)
	}
	return r.salted.BucketInt(v)
}

// prepare lays the schedule out as bucketing.ScheduleWeights wants it.
func (r *Rollout) prepare() {
	r.salted = bucketing.NewSalted(r.Salt)
	r.at = make([]int64, len(r.Schedule))
	r.steps = make([][]int64, len(r.Schedule))
	for i, s := range r.Schedule {
		r.at[i] = s.At
		w := s.Weights
		if len(w) != len(r.Variations) { // malformed; keep the slices aligned
			w = make([]int64, len(r.Variations))
			copy(w, s.Weights)
		}
		r.steps[i] = w
	}
}

func (ps *problems) variations(obj object) (kind Kind, out []Variation) {
	raw, ok := obj.get("variations")
	if !ok {
		ps.add("variations", "missing (at least one variation is required)")
		return 0, nil
	}
	node, ok := raw.(array)
	if !ok {
		ps.add("variations", "got %s, want an array", jsonKind(raw))
		return 0, nil
	}
	arr := node.items
	if len(arr) == 0 {
		ps.add("variations", "empty (at least one variation is required)")
		return 0, nil
	}
	// A list interned is one that was built without problems: the same
	// elements have the same kinds and parse the same way.
	iv, internKey, ok := ps.c.internVariations(arr)
	if ok {
		return iv.kind, iv.list
	}
	problemsBefore := len(ps.list)
	defer func() {
		if len(ps.list) == problemsBefore {
			ps.c.keepVariations(internKey, kind, out)
		}
	}()
	out = make([]Variation, len(arr))
	for i, v := range arr {
		field := ps.item("variations", i)
		var k Kind
		switch x := v.(type) {
		case bool:
			k = KindBool
			out[i].Bool = x
		case string:
			k = KindString
			out[i].String = x
		case json.Number:
			k = KindNumber
			f, err := x.Float64()
			if err != nil {
				ps.add(field, "number %s out of range", x)
			}
			out[i].Number = f
		case object, array:
			k = KindJSON
		default:
			ps.add(field, "got %s, want a bool, string, number, object or array", jsonKind(v))
			continue
		}
		out[i].JSON = variationJSON(v)
		out[i].Value = normalize(v)
		if kind == 0 {
			kind = k
		} else if k != kind {
			ps.add(field, "is a %s but variations[0] is a %s: all variations must have one type", k, kind)
		}
	}
	return kind, out
}

func (ps *problems) serve(v any, field string, f *Flag) Serve {
	s := Serve{Variation: -1}
	o := ps.object(v, field)
	if o == nil {
		return s
	}
	vr, hasVar := o.get("variation")
	ro, hasRollout := o.get("rollout")
	switch {
	case hasVar && hasRollout:
		ps.add(field, "has both variation and rollout: want exactly one")
	case hasVar:
		s.Variation = ps.index(vr, ps.join(field, "variation"), len(f.Variations))
	case hasRollout:
		s.Rollout = ps.rollout(ro, ps.join(field, "rollout"), f)
	default:
		ps.add(field, "has neither variation nor rollout: want exactly one")
	}
	return s
}

func (ps *problems) rollout(v any, field string, f *Flag) *Rollout {
	o := ps.object(v, field)
	if o == nil {
		return nil
	}
	r := &Rollout{Salt: f.Salt()}
	r.BucketBy = ps.path(o, "bucketBy", field, true)
	if s, ok := o.get("salt"); ok && s != nil {
		r.Salt = ps.str(o, "salt", field)
	} else if !f.explicitSalt {
		f.keyed = true // salted with the key
	}
	r.Experiment = ps.boolean(o, "experiment", field)
	items := ps.array(o, "variations", field)
	if len(items) == 0 {
		ps.add(ps.join(field, "variations"), "want at least one weighted variation")
	}
	_, scheduled := o.get("schedule")
	ps.weightedVariations(r, items, field, len(f.Variations), scheduled)
	last := int64(0)
	for i, item := range ps.array(o, "schedule", field) {
		sf := ps.item(ps.join(field, "schedule"), i)
		so := ps.object(item, sf)
		if so == nil {
			continue
		}
		step := Step{}
		if at, ok := so.get("at"); ok {
			ms, ok := instantValue(at)
			if !ok {
				ps.add(ps.join(sf, "at"), "%s is not an RFC 3339 time or Unix milliseconds", describe(at))
			}
			step.At = ms
			if i > 0 && ms <= last {
				ps.add(ps.join(sf, "at"), "steps must be in increasing time order")
			}
			last = ms
		} else {
			ps.add(ps.join(sf, "at"), "missing")
		}
		ws := ps.array(so, "weights", sf)
		if len(ws) != len(items) {
			ps.add(ps.join(sf, "weights"), "has %d weights for %d variations", len(ws), len(items))
		}
		step.Weights = ps.weights(ws, ps.join(sf, "weights"))
		r.Schedule = append(r.Schedule, step)
	}
	if scheduled && len(r.Schedule) == 0 {
		ps.add(ps.join(field, "schedule"), "empty: omit it or give at least one step")
	}
	r.prepare()
	return r
}

// weightedVariations reads a rollout's variations and their static
// weights; n is the flag's number of variations. With a schedule the static
// weights are ignored by evaluation and may be omitted; written down, they
// must still be a valid split.
func (ps *problems) weightedVariations(r *Rollout, items []any, field string, n int, scheduled bool) {
	var sum int64
	anyWeight, badWeight := false, false
	for i, item := range items {
		vf := ps.item(ps.join(field, "variations"), i)
		wo := ps.object(item, vf)
		if wo == nil {
			continue
		}
		r.Variations = append(r.Variations, ps.requiredIndex(wo, "variation", vf, n))
		var w int64
		if raw, ok := wo.get("weight"); ok {
			anyWeight = true
			w = ps.weight(raw, ps.join(vf, "weight"), &badWeight)
		} else if !scheduled {
			ps.add(ps.join(vf, "weight"), "missing")
		}
		r.Weights = append(r.Weights, w)
		sum += w
	}
	if len(items) > 0 && !badWeight && sum != TotalWeight && (!scheduled || anyWeight) {
		ps.add(ps.join(field, "variations"), "weights sum to %d, want %d", sum, TotalWeight)
	}
}

// weights reads the weights of a schedule step, which must sum to
// TotalWeight.
func (ps *problems) weights(ws []any, field string) []int64 {
	var out []int64
	var total int64
	bad := false
	for j, w := range ws {
		x := ps.weight(w, ps.item(field, j), &bad)
		out = append(out, x)
		total += x
	}
	if len(ws) > 0 && !bad && total != TotalWeight {
		ps.add(field, "sum to %d, want %d", total, TotalWeight)
	}
	return out
}
