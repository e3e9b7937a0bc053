package server

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/flagstream/flags/experiment"
	"github.com/flagstream/flags/internal/eval"
	"github.com/flagstream/flags/rules"
)

// The kinds of event (SPEC §7).
const (
	EventExposure = "exposure"
	EventTrack    = "track"
	EventSummary  = "summary"
)

// Event is one SDK event (SPEC §7). Which fields apply depends on Kind.
type Event struct {
	Kind string `json:"kind"`

	// exposure and track
	At         int64  `json:"at,omitempty"` // Unix ms
	ContextKey string `json:"contextKey,omitempty"`

	// exposure
	Flag      string `json:"flag,omitempty"`
	Version   int64  `json:"version,omitempty"`
	Variation *int   `json:"variation,omitempty"`
	InRollout bool   `json:"inRollout,omitempty"`

	// track
	Name  string   `json:"name,omitempty"`
	Value *float64 `json:"value,omitempty"`

	// summary
	Start    int64     `json:"start,omitempty"`
	End      int64     `json:"end,omitempty"`
	Counters []Counter `json:"counters,omitempty"`
	Dropped  int64     `json:"dropped,omitempty"`
}

// Counter is one line of a summary: how many evaluations of a flag's version
// served a variation (Variation nil: the caller's default).
type Counter struct {
	Flag      string `json:"flag"`
	Version   int64  `json:"version"`
	Variation *int   `json:"variation,omitempty"`
	Count     int64  `json:"count"`
}

// Limits of POST /v1/events.
const (
	// MaxEventsBodyBytes is the largest decoded body accepted (413 above).
	MaxEventsBodyBytes = 1 << 20
	// MinBatchIDLength and MaxBatchIDLength bound a batch id.
	MinBatchIDLength = 16
	MaxBatchIDLength = 128
	// maxEventString bounds a key, name or flag in an event.
	maxEventString = 1024
)

// wireEvent is an event as sent, with every field optional so that a
// missing one can be told from a zero one.
type wireEvent struct {
	Kind       *string        `json:"kind"`
	At         *int64         `json:"at"`
	ContextKey *string        `json:"contextKey"`
	Flag       *string        `json:"flag"`
	Version    *int64         `json:"version"`
	Variation  *int           `json:"variation"`
	InRollout  *bool          `json:"inRollout"`
	Name       *string        `json:"name"`
	Value      *float64       `json:"value"`
	Start      *int64         `json:"start"`
	End        *int64         `json:"end"`
	Counters   []*wireCounter `json:"counters"`
	Dropped    *int64         `json:"dropped"`
}

type wireCounter struct {
	Flag      *string `json:"flag"`
	Version   *int64  `json:"version"`
	Variation *int    `json:"variation"`
	Count     *int64  `json:"count"`
}

// validString reports whether p holds a non-empty string of bounded size.
func validString(p *string) bool { return p != nil && *p != "" && len(*p) <= maxEventString }

// nonNegative reports whether p holds a number of at least 0.
func nonNegative[T int | int64](p *T) bool { return p != nil && *p >= 0 }

// validFlag reports whether p holds a flag key.
func validFlag(p *string) bool { return p != nil && rules.ValidKey(*p) }

// event checks a wire event and returns it with its times clamped to
// received (SPEC §8); false when it is rejected.
func (w *wireEvent) event(received int64) (Event, bool) {
	if w.Kind == nil {
		return Event{}, false
	}
	switch *w.Kind {
	case EventExposure:
		return w.exposure(received)
	case EventTrack:
		return w.track(received)
	case EventSummary:
		return w.summary(received)
	}
	return Event{}, false
}

// validVariation reports whether p holds a variation index: at least 0
// and within int32, as every flag's are (a larger one once wrapped to
// another variation, or to -1).
func validVariation(p *int) bool { return nonNegative(p) && *p <= math.MaxInt32 }

func (w *wireEvent) exposure(received int64) (Event, bool) {
	if !nonNegative(w.At) || !validString(w.ContextKey) || !validFlag(w.Flag) ||
		!nonNegative(w.Version) || !validVariation(w.Variation) || w.InRollout == nil {
		return Event{}, false
	}
	return Event{Kind: EventExposure, At: min(*w.At, received), ContextKey: *w.ContextKey, Flag: *w.Flag,
		Version: *w.Version, Variation: w.Variation, InRollout: *w.InRollout}, true
}

func (w *wireEvent) track(received int64) (Event, bool) {
	if !nonNegative(w.At) || !validString(w.ContextKey) || !validString(w.Name) ||
		w.Value != nil && !experiment.ValidValue(*w.Value) {
		return Event{}, false
	}
	return Event{Kind: EventTrack, At: min(*w.At, received), ContextKey: *w.ContextKey, Name: *w.Name, Value: w.Value}, true
}

func (w *wireEvent) summary(received int64) (Event, bool) {
	if !nonNegative(w.Start) || w.End == nil || *w.End < *w.Start || w.Counters == nil || w.Dropped != nil && *w.Dropped < 0 {
		return Event{}, false
	}
	e := Event{Kind: EventSummary, Start: min(*w.Start, received), End: min(*w.End, received), Counters: make([]Counter, 0, len(w.Counters))}
	if w.Dropped != nil {
		e.Dropped = *w.Dropped
	}
	for _, c := range w.Counters {
		if c == nil || !validFlag(c.Flag) || c.Version == nil || !nonNegative(c.Count) || c.Variation != nil && !validVariation(c.Variation) {
			return Event{}, false
		}
		e.Counters = append(e.Counters, Counter{Flag: *c.Flag, Version: *c.Version, Variation: c.Variation, Count: *c.Count})
	}
	return e, true
}

// eventsAnswer is the 202 answer of POST /v1/events.
type eventsAnswer struct {
	Accepted  int  `json:"accepted"`
	Rejected  int  `json:"rejected"`
	Duplicate bool `json:"duplicate,omitempty"`
}

// handleEvents serves POST /v1/events (SPEC §7).
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, RoleReader); !ok {
		return
	}
	// As for admin bodies: a client that sends its body a byte at a time
	// is cut off, rather than holding a connection for ever (SPEC §13).
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.opts.WriteTimeout))
	body, status, err := readEventsBody(w, r)
	if err != nil {
		writeError(w, status, "flags: events: "+err.Error(), nil)
		return
	}
	out, ans, msg := s.readBatch(body)
	if msg != "" {
		writeError(w, http.StatusBadRequest, "flags: events: "+msg, nil)
		return
	}
	dup, err := s.events.log.AppendEvents(r.Context(), out)
	switch {
	case errors.Is(err, ErrUnavailable):
		s.writeStoreDown(w, "events", err)
		return
	case err != nil:
		s.log.Error("flags: events: could not keep a batch", "err", err)
		writeError(w, http.StatusInternalServerError, "flags: events: could not keep the batch", nil)
		return
	}
	if dup {
		ans = eventsAnswer{Duplicate: true}
	} else {
		s.events.tail(r.Context(), s)
	}
	s.stats.eventsAccepted.Add(int64(ans.Accepted))
	s.stats.eventsRejected.Add(int64(ans.Rejected))
	if s.opts.EventsHook != nil && !dup {
		s.opts.EventsHook(ans.Accepted, ans.Rejected)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(ans)
}

// readBatch decodes a batch of events, keeping the valid ones with their
// times clamped to now; msg says why a malformed batch is refused whole.
func (s *Server) readBatch(body []byte) (out *EventBatch, ans eventsAnswer, msg string) {
	var batch struct {
		Batch  *string           `json:"batch"`
		Events []json.RawMessage `json:"events"`
	}
	if at := eval.TooDeepAt(body); at >= 0 {
		return nil, ans, fmt.Sprintf("objects and arrays nest deeper than %d levels (at byte %d)", eval.MaxNesting, at)
	}
	if err := json.Unmarshal(body, &batch); err != nil || batch.Batch == nil || batch.Events == nil {
		return nil, ans, `want {"batch": ID, "events": [...]}`
	}
	if n := utf8.RuneCountInString(*batch.Batch); n < MinBatchIDLength || n > MaxBatchIDLength {
		return nil, ans, fmt.Sprintf("batch id of %d characters, want %d to %d", n, MinBatchIDLength, MaxBatchIDLength)
	}
	received := s.now().UnixMilli()
	out = &EventBatch{ID: *batch.Batch, Received: received, Events: make([]Event, 0, len(batch.Events))}
	for _, raw := range batch.Events {
		var we wireEvent
		var e Event
		ok := json.Unmarshal(raw, &we) == nil
		if ok {
			e, ok = we.event(received)
		}
		if !ok {
			ans.Rejected++
			continue
		}
		out.Events = append(out.Events, e)
		ans.Accepted++
	}
	return out, ans, ""
}

// readEventsBody reads the body of POST /v1/events, decoding gzip, and
// refuses more than MaxEventsBodyBytes decoded (413): a small compressed
// body never inflates beyond the cap (SPEC §13). A gzip body may itself be
// a little larger than what it decodes to (stored, incompressible blocks
// add a few bytes each), so its own cap is twice the decoded one: no body
// over it can decode to 1 MiB or less.
func readEventsBody(w http.ResponseWriter, r *http.Request) ([]byte, int, error) {
	enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
	// The body as sent: one byte over the cap tells it is over; a gzip
	// body may be up to twice the cap (see above).
	wireLimit, tooLarge := int64(MaxEventsBodyBytes+1), fmt.Errorf("body larger than %d bytes", MaxEventsBodyBytes)
	if enc == "gzip" {
		wireLimit, tooLarge = 2*MaxEventsBodyBytes, fmt.Errorf("compressed body larger than %d bytes", 2*MaxEventsBodyBytes)
	}
	var rd io.Reader = http.MaxBytesReader(w, r.Body, wireLimit)
	switch enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(rd)
		if err != nil {
			return nil, http.StatusBadRequest, fmt.Errorf("body is not gzip: %w", err)
		}
		defer zr.Close()
		rd = zr
	default:
		return nil, http.StatusUnsupportedMediaType, fmt.Errorf("Content-Encoding %q: want gzip or none", enc)
	}
	body, err := io.ReadAll(io.LimitReader(rd, MaxEventsBodyBytes+1))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, http.StatusRequestEntityTooLarge, tooLarge
	case err != nil:
		return nil, http.StatusBadRequest, fmt.Errorf("reading body: %w", err)
	case len(body) > MaxEventsBodyBytes:
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("decoded body larger than %d bytes", MaxEventsBodyBytes)
	}
	return body, 0, nil
}

// eventState is what the server derives from the event log: the
// experiment aggregator and the recent evaluation summaries. It reads the
// log in order (tail), so that every batch is counted once, whichever
// replica received it.
type eventState struct {
	log EventLog

	mu        sync.Mutex // serializes tail
	cursor    string
	agg       *experiment.Aggregator
	summaries map[string]*summaryRing // by flag
}

func newEventState(log EventLog) *eventState {
	return &eventState{log: log, agg: experiment.NewAggregator(), summaries: map[string]*summaryRing{}}
}

// tail reads and applies every batch appended since the last tail.
func (es *eventState) tail(ctx context.Context, s *Server) {
	es.mu.Lock()
	defer es.mu.Unlock()
	for {
		batches, next, err := es.log.EventsSince(ctx, es.cursor, 1000)
		if err != nil {
			s.log.Warn("flags: events: reading the event log", "err", err)
			return
		}
		doc := s.Document()
		for _, b := range batches {
			es.apply(b, func(flag string) bool { _, ok := doc.Flags[flag]; return ok })
		}
		es.cursor = next
		if len(batches) < 1000 {
			return
		}
	}
}

// apply adds one batch to the aggregates. Summaries are kept for the
// flags served only (known): a counter of a flag that does not exist would
// cost an hour of minutes for a few bytes of input (SPEC §13). es.mu is
// held.
func (es *eventState) apply(b *EventBatch, known func(flag string) bool) {
	for i := range b.Events {
		e := &b.Events[i]
		switch e.Kind {
		case EventExposure:
			es.agg.Exposure(e.Flag, e.ContextKey, *e.Variation, e.InRollout, e.At)
		case EventTrack:
			v, has := 0.0, e.Value != nil
			if has {
				v = *e.Value
			}
			es.agg.Track(e.Name, e.ContextKey, v, has, e.At)
		case EventSummary:
			for _, c := range e.Counters {
				if !known(c.Flag) {
					continue
				}
				ring := es.summaries[c.Flag]
				if ring == nil {
					ring = &summaryRing{}
					es.summaries[c.Flag] = ring
				}
				ring.add(e.End, c.Variation, c.Count)
			}
		}
	}
}

// summaryMinutes is how many minutes of summaries the server keeps.
const summaryMinutes = 60

// summaryRing holds a flag's evaluation counts per minute, for the last
// summaryMinutes minutes.
type summaryRing struct {
	minutes [summaryMinutes]summaryMinute
}

// summaryMinute is one minute of one flag's evaluations.
type summaryMinute struct {
	start    int64         // Unix ms of the minute's start; 0: unused
	variants map[int]int64 // variation → evaluations
	defaults int64         // evaluations that served the caller's default
}

func (r *summaryRing) add(at int64, variation *int, n int64) {
	start := at - at%60000
	m := &r.minutes[(start/60000)%summaryMinutes]
	if m.start != start || m.variants == nil {
		if m.start > start {
			return // older than the ring reaches
		}
		*m = summaryMinute{start: start, variants: map[int]int64{}}
	}
	if variation == nil {
		m.defaults += n
		return
	}
	m.variants[*variation] += n
}

// SummaryMinute is one minute of a flag's evaluations, from the SDKs'
// summaries: how many served each variation, and the caller's default.
type SummaryMinute struct {
	Start      int64            `json:"start"` // Unix ms
	Variations map[string]int64 `json:"variations"`
	Default    int64            `json:"default"`
}

// Summaries returns the last hour of flag's evaluations, per minute, oldest
// first (minutes without any are left out).
func (s *Server) Summaries(flag string) []SummaryMinute {
	es := s.events
	es.mu.Lock()
	defer es.mu.Unlock()
	out := []SummaryMinute{}
	ring := es.summaries[flag]
	if ring == nil {
		return out
	}
	cut := s.now().UnixMilli() - summaryMinutes*60000
	for _, m := range ring.minutes {
		if m.start == 0 || m.start <= cut {
			continue
		}
		sm := SummaryMinute{Start: m.start, Variations: map[string]int64{}, Default: m.defaults}
		for v, n := range m.variants {
			sm.Variations[fmt.Sprint(v)] = n
		}
		out = append(out, sm)
	}
	slices.SortFunc(out, func(a, b SummaryMinute) int { return int(a.Start - b.Start) })
	return out
}

// Experiment returns SPEC §8's analysis of flag key, and false when the
// server serves no such flag.
func (s *Server) Experiment(key string) (*experiment.Report, bool) {
	s.writeMu.Lock()
	e := s.flags[key]
	s.writeMu.Unlock()
	if e == nil {
		return nil, false
	}
	s.events.tail(context.Background(), s)
	info, _ := experiment.FlagInfoOf(key, e.raw) // a malformed flag's report uses what could be read of it
	return s.events.agg.Report(info), true
}

// handleExperiment serves GET /v1/admin/experiments/{flag} (operator or
// admin).
func (s *Server) handleExperiment(w http.ResponseWriter, r *http.Request) {
	key, _ := s.adminKey(w, r, KindFlag, RoleOperator)
	if key == "" {
		return
	}
	rep, ok := s.Experiment(key)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("flags: flags.%s: no such flag", key), nil)
		return
	}
	writeJSON(w, rep)
}

// handleSummaries serves GET /v1/admin/summaries/{key}: the flag's
// evaluations per minute over the last hour (operator or admin).
func (s *Server) handleSummaries(w http.ResponseWriter, r *http.Request) {
	key, _ := s.adminKey(w, r, KindFlag, RoleOperator)
	if key == "" {
		return
	}
	writeJSON(w, struct {
		Flag    string          `json:"flag"`
		Minutes []SummaryMinute `json:"minutes"`
	}{key, s.Summaries(key)})
}

func writeJSON(w http.ResponseWriter, v any) {
	var b bytes.Buffer
	if err := json.NewEncoder(&b).Encode(v); err != nil {
		writeError(w, http.StatusInternalServerError, "flags: "+err.Error(), nil)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b.Bytes())
}

// now is the server's clock (Options.Now, for tests).
func (s *Server) now() time.Time {
	if s.opts.Now != nil {
		return s.opts.Now()
	}
	return time.Now()
}
