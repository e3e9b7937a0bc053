package flags

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/flagstream/flags/internal/eval"
)

// The evaluation counters behind event summaries (SPEC §7) and
// Client.Metrics: an atomic add per evaluation into the current snapshot's
// counters, drained by the flusher and by Metrics.

// summaryCounters count the evaluations of one snapshot.
type summaryCounters struct {
	snap *eval.Snapshot
	flagCounts
}

// flagCounts are the counters of a snapshot's flags: for each flag (by its
// Node), one counter per variation and one for the caller's default. They
// do not hold the snapshot, only its flags.
type flagCounts struct {
	flags  []*eval.Flag
	offset []int32 // flag node → its first counter
	counts []atomic.Int64
}

// evalCounter counts evaluations per flag version and variation: in the
// current snapshot's summaryCounters (one atomic add), else, for the rare
// evaluation that raced a snapshot swap, in a map under a mutex.
type evalCounter struct {
	counters atomic.Pointer[summaryCounters]
	mu       sync.Mutex
	late     map[lateKey]int64 // counts moved out of the counters, not yet drained
	// retired are the counters swapped out in the last retiredFor (at
	// most keptRetired of them), drained again at every drain: an
	// evaluation that loaded one just before the swap adds to it after,
	// and that count is delayed, not lost.
	retired []retiredCounters
}

type retiredCounters struct {
	flagCounts
	at time.Time
}

// An evaluation adds to the counters it loaded a few nanoseconds earlier;
// its count is lost only if its goroutine stalls between the two for
// longer than retiredFor, or while so many snapshots replace one another
// that the retired counters exceed keptRetired (only large documents
// replaced hundreds of times a second do). Retired counters cost their
// counters and the flags of their snapshot that later ones do not share
// (the changed ones), not the snapshot.
const (
	keptRetired = 1 << 20 // counters, all retired ones together
	retiredFor  = time.Second
)

// count counts one evaluation of f in snap that served v (-1: the default).
func (c *evalCounter) count(snap *eval.Snapshot, f *eval.Flag, v int32) {
	if sc := c.counters.Load(); sc != nil && sc.snap == snap {
		i := sc.offset[f.Node()]
		if v >= 0 {
			i += v
		} else {
			i += int32(len(f.Variations))
		}
		sc.counts[i].Add(1)
		return
	}
	c.mu.Lock()
	if c.late == nil {
		c.late = map[lateKey]int64{}
	}
	c.late[lateKey{f.Key, f.Version, v}]++
	c.mu.Unlock()
}

// rebind switches to snap's counters, keeping the old counts.
func (c *evalCounter) rebind(snap *eval.Snapshot) {
	old := c.counters.Swap(newSummaryCounters(snap))
	if old == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.late == nil {
		c.late = map[lateKey]int64{}
	}
	old.drainInto(c.late)
	now := time.Now()
	c.retired = append(c.retired, retiredCounters{old.flagCounts, now})
	kept := 0
	for _, r := range c.retired {
		kept += len(r.counts)
	}
	drop := 0 // the oldest go first
	for ; drop < len(c.retired) && (kept > keptRetired || now.Sub(c.retired[drop].at) >= retiredFor); drop++ {
		c.retired[drop].drainInto(c.late)
		kept -= len(c.retired[drop].counts)
	}
	if drop > 0 {
		n := copy(c.retired, c.retired[drop:])
		clear(c.retired[n:])
		c.retired = c.retired[:n]
	}
}

// drain returns the counts since the last drain and starts again.
func (c *evalCounter) drain() map[lateKey]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.late
	if out == nil {
		out = map[lateKey]int64{}
	}
	now := time.Now()
	kept := c.retired[:0]
	for _, r := range c.retired {
		r.drainInto(out)
		if now.Sub(r.at) < retiredFor {
			kept = append(kept, r)
		}
	}
	clear(c.retired[len(kept):])
	c.retired = kept
	if sc := c.counters.Load(); sc != nil {
		sc.drainInto(out)
	}
	c.late = nil
	return out
}

type lateKey struct {
	flag      string
	version   int64
	variation int32
}

func newSummaryCounters(snap *eval.Snapshot) *summaryCounters {
	flags := snap.Flags()
	sc := &summaryCounters{snap: snap, flagCounts: flagCounts{flags: flags, offset: make([]int32, len(flags))}}
	n := 0
	for _, f := range flags {
		sc.offset[f.Node()] = int32(n)
		n += len(f.Variations) + 1
	}
	sc.counts = make([]atomic.Int64, n)
	return sc
}

// drainInto moves the counts into m (exact: each counter is swapped to 0).
func (sc *flagCounts) drainInto(m map[lateKey]int64) {
	for _, f := range sc.flags {
		base := sc.offset[f.Node()]
		for v := int32(0); v <= int32(len(f.Variations)); v++ {
			if n := sc.counts[base+v].Swap(0); n > 0 {
				variation := v
				if v == int32(len(f.Variations)) {
					variation = -1
				}
				m[lateKey{f.Key, f.Version, variation}] += n
			}
		}
	}
}
