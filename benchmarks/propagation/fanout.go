package propagation

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Fanout measures the server alone: like Run, but each client is a raw SSE
// reader (one TCP connection, one goroutine, a line scanner) instead of a
// flags.Client, so the clients' own work (decoding, compiling, evaluating)
// hardly weighs on the numbers. Latencies[c*Changes+k] is the time from the
// admin PUT of change k to reader c having read the whole patch event.
// Observations is nil; ClientBytes is the readers' memory.
func Fanout(ctx context.Context, cfg Config) (*Result, error) {
	cfg, cleanup, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	defer cleanup()
	u, err := url.Parse(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("flags: propagation: %w", err)
	}
	before := memInUse()

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	f := &fanout{
		cfg:     cfg,
		tr:      newTracker(cfg.Changes, cfg.Clients),
		readers: make([]*rawReader, cfg.Clients),
		ready:   make(chan int64, cfg.Clients),
		failed:  make(chan error, cfg.Clients),
	}
	defer f.wg.Wait()
	defer stop()
	if err := f.connect(ctx, runCtx, u); err != nil {
		return nil, err
	}

	res := &Result{}
	if res.BaseVersion, err = f.awaitConnected(); err != nil {
		return nil, err
	}
	res.ClientBytes = float64(memInUse()-before) / float64(cfg.Clients)
	if err := callHook(cfg.Connected); err != nil {
		return nil, err
	}
	starts, err := makeChanges(ctx, cfg, res.BaseVersion, func(k int, _ int64) error { return f.awaitChange(k) })
	if err != nil {
		return nil, err
	}
	if err := callHook(cfg.Applied); err != nil {
		return nil, err
	}
	for _, r := range f.readers {
		r.mu.Lock()
		res.Latencies = r.arr.appendLatencies(res.Latencies, starts)
		r.mu.Unlock()
	}
	return res, nil
}

// fanout is one run of Fanout: its readers and what they report.
type fanout struct {
	cfg     Config
	tr      *tracker
	readers []*rawReader
	ready   chan int64 // each reader's snapshot version
	failed  chan error
	wg      sync.WaitGroup // the readers' goroutines, which end with runCtx
}

// connect dials one connection a reader and starts reading it; the
// connections close when runCtx ends.
func (f *fanout) connect(ctx, runCtx context.Context, u *url.URL) error {
	for i := range f.readers {
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", u.Host)
		if err != nil {
			return fmt.Errorf("flags: propagation: reader %d: %w", i, err)
		}
		r := &rawReader{conn: conn, arr: arrivals{at: make([]time.Time, f.cfg.Changes)}, base: -1}
		f.readers[i] = r
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			<-runCtx.Done()
			_ = conn.Close()
		}()
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			err := r.read(u, f.cfg.Token, f.ready, f.tr.applied)
			if err != nil && runCtx.Err() == nil {
				f.failed <- fmt.Errorf("flags: propagation: reader %d: %w", i, err)
			}
		}()
	}
	return nil
}

// awaitConnected waits until every reader has read its snapshot, for at
// most ReadyTimeout, and returns their common version.
func (f *fanout) awaitConnected() (int64, error) {
	base := int64(-1)
	timer := time.NewTimer(f.cfg.ReadyTimeout)
	defer timer.Stop()
	for range f.readers {
		select {
		case v := <-f.ready:
			if base >= 0 && v != base {
				return 0, fmt.Errorf("flags: propagation: readers got snapshots %d and %d: the server changed while they connected", v, base)
			}
			base = v
		case err := <-f.failed:
			return 0, err
		case <-timer.C:
			return 0, errors.New("flags: propagation: readers not connected in time")
		}
	}
	return base, nil
}

// awaitChange waits until every reader has read change k, for at most
// ChangeTimeout.
func (f *fanout) awaitChange(k int) error {
	t := time.NewTimer(f.cfg.ChangeTimeout)
	defer t.Stop()
	select {
	case <-f.tr.done[k]:
		return nil
	case err := <-f.failed:
		return err
	case <-t.C:
		return fmt.Errorf("flags: propagation: change %d: %d of %d readers did not read it within %v",
			k, f.tr.remaining[k].Load(), f.cfg.Clients, f.cfg.ChangeTimeout)
	}
}

// rawReader is one connection to GET /v1/stream, read line by line.
type rawReader struct {
	conn net.Conn
	mu   sync.Mutex // guards arr against the reader of the Result
	arr  arrivals   // when each change's event was read
	base int64      // snapshot version; -1 before it
}

// read sends the request, reports the snapshot's version on ready, then
// records every patch that follows until the connection ends.
func (r *rawReader) read(u *url.URL, token string, ready chan<- int64, applied func(ks ...int)) error {
	body, err := r.open(u, token)
	if err != nil {
		return err
	}
	defer body.Close()
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 4096), 16<<20)
	var id int64 = -1
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "id: "); ok {
			i := strings.LastIndexByte(v, ':')
			if id, err = strconv.ParseInt(v[i+1:], 10, 64); err != nil {
				return fmt.Errorf("event id %q: %w", v, err)
			}
			continue
		}
		if line != "" || id < 0 {
			continue
		}
		r.endOfEvent(id, ready, applied)
		id = -1
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return errors.New("stream ended")
}

// open sends the request for the stream and returns the body of its
// answer.
func (r *rawReader) open(u *url.URL, token string) (io.ReadCloser, error) {
	req := "GET " + strings.TrimSuffix(u.EscapedPath(), "/") + "/v1/stream HTTP/1.1\r\nHost: " + u.Host +
		"\r\nAccept: text/event-stream\r\n"
	if token != "" {
		req += "Authorization: Bearer " + token + "\r\n"
	}
	if _, err := r.conn.Write([]byte(req + "\r\n")); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(r.conn), nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET /v1/stream: %s", resp.Status)
	}
	return resp.Body, nil
}

// endOfEvent handles the end of the event with version id: the first is
// the snapshot, reported on ready; each later one is the patch of the
// changes up to id.
func (r *rawReader) endOfEvent(id int64, ready chan<- int64, applied func(ks ...int)) {
	now := time.Now()
	if r.base < 0 {
		r.base = id
		ready <- id
		return
	}
	r.mu.Lock()
	finished := r.arr.reach(r.base, id, now)
	r.mu.Unlock()
	applied(finished...)
}
