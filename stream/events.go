package stream

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/flagstream/flags"
)

// gzipAbove is the body size from which events are sent compressed.
const gzipAbove = 8 << 10

// EventExporter returns the Exporter that sends a client's events to the
// server's POST /v1/events (SPEC §7), with the Source's token and HTTP
// client: flags.New uses it unless flags.WithEventExporter or
// flags.WithEvents(false) says otherwise. Nil when the Config is invalid
// (flags.New then fails anyway).
func (s *Source) EventExporter() flags.Exporter {
	if s.err != nil {
		return nil
	}
	return &eventExporter{cfg: s.cfg}
}

// eventExporter posts batches to one server.
type eventExporter struct {
	cfg *settings
}

func (e *eventExporter) Export(ctx context.Context, b *flags.EventBatch) error {
	body, err := json.Marshal(b)
	if err != nil {
		return fmt.Errorf("%w: %w", flags.ErrEventsRejected, err)
	}
	encoding := ""
	if len(body) > gzipAbove {
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		_, _ = zw.Write(body)
		_ = zw.Close()
		body, encoding = z.Bytes(), "gzip"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.cfg.eventsURL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("flags: POST %s: %w", e.cfg.shownEvents, redactErr(err))
	}
	req.Header.Set("Content-Type", "application/json")
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	if e.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+e.cfg.Token)
	}
	client := &http.Client{Transport: e.cfg.HTTPClient.Transport, Jar: e.cfg.HTTPClient.Jar,
		CheckRedirect: checkRedirect(e.cfg.origin, e.cfg.HTTPClient.CheckRedirect), Timeout: MaxRequestTimeout}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("flags: POST %s: %w", e.cfg.shownEvents, redactErr(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode == http.StatusAccepted || resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("%w: POST %s: %d", flags.ErrEventsUnauthorized, e.cfg.shownEvents, resp.StatusCode)
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed:
		return fmt.Errorf("%w: POST %s: %d", flags.ErrEventsUnsupported, e.cfg.shownEvents, resp.StatusCode)
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return fmt.Errorf("flags: POST %s: %d %s", e.cfg.shownEvents, resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	return fmt.Errorf("%w: POST %s: %d %s", flags.ErrEventsRejected, e.cfg.shownEvents, resp.StatusCode, http.StatusText(resp.StatusCode))
}
