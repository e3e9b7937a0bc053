package propagation

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

	remaining := make([]atomic.Int64, cfg.Changes)
	done := make([]chan struct{}, cfg.Changes)
	for k := range done {
		remaining[k].Store(int64(cfg.Clients))
		done[k] = make(chan struct{})
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	readers := make([]*rawReader, cfg.Clients)
	ready := make(chan int64, cfg.Clients) // each reader's snapshot version
	failed := make(chan error, cfg.Clients)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stop()
	for i := range readers {
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", u.Host)
		if err != nil {
			return nil, fmt.Errorf("flags: propagation: reader %d: %w", i, err)
		}
		r := &rawReader{conn: conn, at: make([]time.Time, cfg.Changes), base: -1}
		readers[i] = r
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-runCtx.Done()
			_ = conn.Close()
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := r.read(u, cfg.Token, ready, func(k int) {
				if remaining[k].Add(-1) == 0 {
					close(done[k])
				}
			})
			if err != nil && runCtx.Err() == nil {
				failed <- fmt.Errorf("flags: propagation: reader %d: %w", i, err)
			}
		}()
	}

	res := &Result{BaseVersion: -1}
	timer := time.NewTimer(cfg.ReadyTimeout)
	defer timer.Stop()
	for range readers {
		select {
		case v := <-ready:
			if res.BaseVersion >= 0 && v != res.BaseVersion {
				return nil, fmt.Errorf("flags: propagation: readers got snapshots %d and %d: the server changed while they connected", v, res.BaseVersion)
			}
			res.BaseVersion = v
		case err := <-failed:
			return nil, err
		case <-timer.C:
			return nil, errors.New("flags: propagation: readers not connected in time")
		}
	}
	res.ClientBytes = float64(memInUse()-before) / float64(cfg.Clients)
	if cfg.Connected != nil {
		if err := cfg.Connected(); err != nil {
			return nil, err
		}
	}
	starts := make([]time.Time, cfg.Changes)
	for k := range cfg.Changes {
		key, value := ChangeOf(k, cfg.Flags)
		starts[k] = time.Now()
		if err := put(ctx, cfg, key, FlagJSON(value), res.BaseVersion+int64(k)+1); err != nil {
			return nil, fmt.Errorf("flags: propagation: change %d: %w", k, err)
		}
		t := time.NewTimer(cfg.ChangeTimeout)
		select {
		case <-done[k]:
			t.Stop()
		case err := <-failed:
			t.Stop()
			return nil, err
		case <-t.C:
			return nil, fmt.Errorf("flags: propagation: change %d: %d of %d readers did not read it within %v",
				k, remaining[k].Load(), cfg.Clients, cfg.ChangeTimeout)
		}
	}
	if cfg.Applied != nil {
		if err := cfg.Applied(); err != nil {
			return nil, err
		}
	}
	for _, r := range readers {
		r.mu.Lock()
		for k := range cfg.Changes {
			res.Latencies = append(res.Latencies, r.at[k].Sub(starts[k]))
		}
		r.mu.Unlock()
	}
	return res, nil
}

// rawReader is one connection to GET /v1/stream, read line by line.
type rawReader struct {
	conn net.Conn
	mu   sync.Mutex
	at   []time.Time // when each change's event was read
	base int64       // snapshot version; -1 before it
	next int
}

// read sends the request, reports the snapshot's version on ready, then
// records every patch that follows until the connection ends.
func (r *rawReader) read(u *url.URL, token string, ready chan<- int64, applied func(k int)) error {
	req := "GET " + strings.TrimSuffix(u.EscapedPath(), "/") + "/v1/stream HTTP/1.1\r\nHost: " + u.Host +
		"\r\nAccept: text/event-stream\r\n"
	if token != "" {
		req += "Authorization: Bearer " + token + "\r\n"
	}
	if _, err := r.conn.Write([]byte(req + "\r\n")); err != nil {
		return err
	}
	br := bufio.NewReader(r.conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /v1/stream: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
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
		// The end of an event.
		now := time.Now()
		if r.base < 0 {
			r.base = id
			ready <- id
		} else {
			var finished []int
			r.mu.Lock()
			for ; r.next < len(r.at) && r.base+int64(r.next)+1 <= id; r.next++ {
				r.at[r.next] = now
				finished = append(finished, r.next)
			}
			r.mu.Unlock()
			for _, k := range finished {
				applied(k)
			}
		}
		id = -1
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return errors.New("stream ended")
}
