package stream

import (
	"errors"
	"net/http"
	"testing"
	"time"
)

// trickle answers 200 and then sends the bytes of body one at a time, every
// 20 ms, over and over, never finishing.
func trickle(contentType, body string) func(n int, w http.ResponseWriter, r *http.Request) {
	return func(n int, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-r.Context().Done():
				return
			case <-tick.C:
			}
			if _, err := w.Write([]byte{body[i%len(body)]}); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	}
}

// TestPollTricklingServerHitsDeadline: "A poll request has no overall
// deadline (a server trickling bytes holds it forever)". Every GET
// /v1/flags, the Poller's and the Streamer's fallback, is abandoned after
// RequestTimeout, although a byte arrives every 20 ms (the idle timeout
// never fires).
func TestPollTricklingServerHitsDeadline(t *testing.T) {
	t.Run("poller", func(t *testing.T) {
		srv := newFakeServer(t, nil, trickle("application/json", `{"version":1,`))
		cfg, clock := gatedConfig(srv.URL)
		cfg.PollInterval = 100 * time.Millisecond // the deadline is then MinRequestTimeout
		rec := newRecorder()
		run := startRun(t, newTestPoller(t, cfg).Run, rec)
		nextSleep(t, clock)
		run.stop(t)
		_, sts := rec.snapshot()
		if len(sts) == 0 || !errors.Is(sts[0].Err, ErrRequestTimeout) || sts[0].Source != OriginPoll {
			t.Errorf("statuses = %v, want a poll failure with ErrRequestTimeout", sts)
		}
		checkNoLeak(t)
	})
	t.Run("stream fallback", func(t *testing.T) {
		srv := newFakeServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
			http.Error(w, "down", http.StatusInternalServerError)
		}, trickle("application/json", `{"version":1,`))
		cfg, clock := gatedConfig(srv.URL)
		cfg.PollInterval = 100 * time.Millisecond
		rec := newRecorder()
		run := startRun(t, newTestStreamer(t, cfg).Run, rec)
		for range FallbackPollAfter { // the fallback poll runs before the 2nd wait
			nextSleep(t, clock)
		}
		run.stop(t)
		_, sts := rec.snapshot()
		if !hasStatus(sts, func(s reported) bool { return s.Source == OriginPoll && errors.Is(s.Err, ErrRequestTimeout) }) {
			t.Errorf("statuses = %v, want a fallback poll failure with ErrRequestTimeout", sts)
		}
		checkNoLeak(t)
	})
}

// TestStreamTricklingBytesIsIdle: the stream has no overall deadline, but
// its idle timeout counts complete events and comment lines, not bytes: a
// server that trickles bytes, or field lines, without ever ending an event
// is dropped as idle.
func TestStreamTricklingBytesIsIdle(t *testing.T) {
	for name, body := range map[string]string{
		"bytes":       "data: {",
		"field lines": "data: x\n",
	} {
		t.Run(name, func(t *testing.T) {
			srv := newFakeServer(t, trickle("text/event-stream", body), nil)
			cfg, clock := gatedConfig(srv.URL)
			cfg.IdleTimeout = 300 * time.Millisecond
			rec := newRecorder()
			run := startRun(t, newTestStreamer(t, cfg).Run, rec)
			nextSleep(t, clock)
			run.stop(t)
			_, sts := rec.snapshot()
			if !hasStatus(sts, func(s reported) bool { return errors.Is(s.Err, ErrIdleTimeout) }) {
				t.Errorf("statuses = %v, want a failure with ErrIdleTimeout", sts)
			}
			checkNoLeak(t)
		})
	}
}

func TestRequestTimeout(t *testing.T) {
	for ivl, want := range map[time.Duration]time.Duration{
		0:                     30 * time.Second,
		20 * time.Millisecond: MinRequestTimeout,
		5 * time.Second:       5 * time.Second,
		30 * time.Second:      30 * time.Second,
		10 * time.Minute:      MaxRequestTimeout,
		-1:                    30 * time.Second,
	} {
		if got := RequestTimeout(ivl); got != want {
			t.Errorf("RequestTimeout(%v) = %v, want %v", ivl, got, want)
		}
	}
}
