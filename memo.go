package flags

import (
	"sync"

	"github.com/flagstream/flags/internal/eval"
)

// memo remembers the result of every segment and prerequisite flag that one
// evaluation evaluates, for a flag whose graph may reach one of them more
// than once (eval.Flag.NeedsMemo): each is then evaluated once, so that an
// evaluation costs no more than the size of the document however its
// segments and prerequisites nest and share (SPEC §13).
//
// It is a hash table with linear probing keyed by node number
// (eval.Flag.Node, eval.Segment.Node): an array on the evaluating
// goroutine's stack for the first few nodes, a pooled one beyond. Only the
// nodes an evaluation reaches are stored, so its size is bounded by the work
// done, not by the snapshot.
type memo struct {
	small [memoSmall]memoEntry
	big   *memoTable // nil while small holds every entry
	n     int        // entries stored
	errs  []error    // errors remembered; an entry's value -k is errs[k-1]
}

// memoSmall is the size of a memo's table on the stack (a power of two):
// it holds 3/4 as many nodes, enough for the graphs of nearly every flag.
const memoSmall = 32

// memoEntry is one node's result: key is the node + 1 (0: a free slot);
// val is memoOut or memoIn for a segment, the variation + memoVariation for
// a flag, and negative for an error.
type memoEntry struct {
	key, val int32
}

const (
	memoOut       int32 = 1
	memoIn        int32 = 2
	memoVariation int32 = 2 // a flag's variation is >= -1
)

// memoTable is a table larger than memoSmall, reused through memoTables.
type memoTable struct {
	entries []memoEntry
}

var memoTables sync.Pool // of *memoTable

func (m *memo) table() []memoEntry {
	if m.big != nil {
		return m.big.entries
	}
	return m.small[:]
}

// slot returns where node is in t, or the free slot where it goes.
func slot(t []memoEntry, node int32) int {
	mask := uint64(len(t) - 1)
	// Fibonacci hashing: node numbers are dense, the high bits of the
	// product spread them over the table.
	for i := (uint64(uint32(node)) * 0x9E3779B97F4A7C15 >> 32) & mask; ; i = (i + 1) & mask {
		if k := t[i].key; k == node+1 || k == 0 {
			return int(i)
		}
	}
}

// get returns the value remembered for node, 0 when there is none.
func (m *memo) get(node int32) int32 {
	t := m.table()
	return t[slot(t, node)].val
}

// put remembers val for node, which has none yet. An error is remembered
// as err.
func (m *memo) put(node, val int32, err error) {
	if err != nil {
		m.errs = append(m.errs, err)
		val = -int32(len(m.errs))
	}
	if t := m.table(); (m.n+1)*4 > len(t)*3 {
		m.grow(2 * len(t))
	}
	t := m.table()
	t[slot(t, node)] = memoEntry{key: node + 1, val: val}
	m.n++
}

// failed returns the error remembered under val, a negative value.
func (m *memo) failed(val int32) error { return m.errs[-val-1] }

// grow moves the entries to a pooled table of size entries.
func (m *memo) grow(size int) {
	nt, _ := memoTables.Get().(*memoTable)
	if nt == nil || cap(nt.entries) < size {
		nt = &memoTable{entries: make([]memoEntry, size)}
	} else {
		nt.entries = nt.entries[:size]
		clear(nt.entries)
	}
	for _, e := range m.table() {
		if e.key != 0 {
			nt.entries[slot(nt.entries, e.key-1)] = e
		}
	}
	m.release()
	m.big = nt
}

// release returns a pooled table.
func (m *memo) release() {
	if m.big != nil {
		memoTables.Put(m.big)
		m.big = nil
	}
}

// decideMemoized is decide for a flag that needs a memo (see memo). The
// memo lives in this frame, not in decide's, which most evaluations enter
// without one; the evaluator is copied so that the memo's address is stored
// only in a variable of this frame and does not escape to the heap.
//
//go:noinline
func (e *evaluator) decideMemoized(f *eval.Flag, depth int) (decision, error) {
	var m memo
	sub := *e
	sub.memo = &m
	d, err := sub.decide(f, depth)
	m.release()
	// Only the fields without pointers: escape analysis tracks sub as a
	// whole, so copying any pointer out of it would move the memo to the
	// heap. e's attribute cache stays valid (the context is the same).
	e.haveNow, e.now, e.visits = sub.haveNow, sub.now, sub.visits
	return d, err
}

// memoSegment is inSegment for an evaluation with a memo.
func (e *evaluator) memoSegment(s *eval.Segment, depth int) (bool, error) {
	m := e.memo
	switch v := m.get(s.Node()); {
	case v > 0:
		return v == memoIn, nil
	case v < 0:
		return false, m.failed(v)
	}
	e.visits++
	in, err := e.inSegment(s, depth)
	v := memoOut
	if in {
		v = memoIn
	}
	m.put(s.Node(), v, err)
	return in, err
}

// memoPrerequisite is the variation a prerequisite flag serves, decided once
// per evaluation with a memo; ok is false when its evaluation failed (it
// reached a malformed segment).
func (e *evaluator) memoPrerequisite(pf *eval.Flag, depth int) (variation int32, ok bool) {
	m := e.memo
	switch v := m.get(pf.Node()); {
	case v > 0:
		return v - memoVariation, true
	case v < 0:
		return 0, false
	}
	e.visits++
	d, err := e.decide(pf, depth)
	m.put(pf.Node(), d.variation+memoVariation, err)
	return d.variation, err == nil
}
