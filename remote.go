package flags

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"

	"github.com/flagstream/flags/rules"
	"github.com/flagstream/flags/stream"
)

// WithStream keeps the client in sync with a flagstream server over
// server-sent events (SPEC §5): a snapshot, then patches within milliseconds
// of every change, with reconnection, backoff and resync handled by package
// stream. Only cfg.BaseURL is required; cfg.Logger defaults to the client's.
//
//	client, err := flags.New(flags.WithStream(stream.Config{
//		BaseURL: "https://flags.internal", Token: os.Getenv("FLAGS_TOKEN")}))
func WithStream(cfg stream.Config) Option {
	return optionFunc(func(c *config) error {
		if c.remote != nil {
			return errors.New("flags: WithStream and WithPolling are exclusive")
		}
		c.remote = &remoteConfig{cfg: cfg}
		return nil
	})
}

// WithPolling keeps the client in sync by fetching GET /v1/flags every
// cfg.PollInterval (default 30 s) with If-None-Match, for networks that cut
// long-lived connections.
func WithPolling(cfg stream.Config) Option {
	return optionFunc(func(c *config) error {
		if c.remote != nil {
			return errors.New("flags: WithStream and WithPolling are exclusive")
		}
		c.remote = &remoteConfig{cfg: cfg, poll: true}
		return nil
	})
}

// WithCache keeps a last-known-good copy of the remote source's flags in the
// file at path: it is rewritten atomically after the updates applied (at
// most once per stream.CacheWriteInterval while they pour in, and always
// with the last one, before Close returns), and read when the client
// starts, so that a service restarted during an outage
// of the flag server still serves real flags. A cached snapshot is served at
// once, with state STALE and source "cache", until the server delivers; a
// file that is corrupt, truncated or was written for another base URL is
// logged and ignored. Temporary files a killed process left beside it are
// removed. It requires WithStream or WithPolling.
func WithCache(path string) Option {
	return optionFunc(func(c *config) error {
		if path == "" {
			return errors.New("flags: WithCache: empty path")
		}
		c.cache = path
		return nil
	})
}

type remoteConfig struct {
	cfg  stream.Config
	poll bool
}

// runner is what Streamer and Poller have in common.
type runner interface {
	Run(ctx context.Context, h stream.Handler) error
}

// remoteSource adapts a stream.Streamer or stream.Poller to Source, and
// keeps the last-known-good cache current with the documents applied.
type remoteSource struct {
	r       runner
	baseURL string
	shown   string // baseURL, its password redacted
	cache   string
	writer  *stream.CacheWriter // nil without a cache
	logger  *slog.Logger
}

func newRemoteSource(rc *remoteConfig, cache string, logger *slog.Logger) (*remoteSource, error) {
	cfg := rc.cfg
	if cfg.Logger == nil {
		cfg.Logger = logger
	}
	rs := &remoteSource{baseURL: cfg.BaseURL, shown: cfg.BaseURL, cache: cache, logger: logger}
	if u, err := url.Parse(cfg.BaseURL); err == nil {
		rs.shown = u.Redacted()
	}
	var err error
	if rc.poll {
		rs.r, err = stream.NewPoller(cfg)
	} else {
		rs.r, err = stream.NewStreamer(cfg)
	}
	if err != nil {
		return nil, err
	}
	if cache != "" {
		rs.writer = stream.NewCacheWriter(cache, cfg.BaseURL, logger)
	}
	return rs, nil
}

// loadCache reads the last-known-good file, or returns nil (and logs why).
func (rs *remoteSource) loadCache() *rules.Document {
	if rs.cache == "" {
		return nil
	}
	doc, err := stream.ReadCache(rs.cache, rs.baseURL)
	if errors.Is(err, fs.ErrNotExist) {
		rs.logger.Debug("flags: no last-known-good cache yet", "path", rs.cache)
		return nil
	}
	if err != nil {
		rs.logger.Warn("flags: ignoring the last-known-good cache", "path", rs.cache, "err", err)
		return nil
	}
	return doc
}

// Run runs the stream or poller and, with a cache, its writer. The writer
// stops after the stream: what the last Apply stored is written before Run
// returns, hence before Client.Close returns.
func (rs *remoteSource) Run(ctx context.Context, u Updates) error {
	if rs.writer != nil {
		wctx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			rs.writer.Run(wctx)
		}()
		defer func() {
			stop()
			<-done
		}()
	}
	err := rs.r.Run(ctx, &remoteHandler{rs: rs, u: u})
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("flags: %s stopped: %w", rs.shown, err)
	}
	return nil
}

type remoteHandler struct {
	rs *remoteSource
	u  Updates
}

func (h *remoteHandler) Apply(doc *rules.Document, src stream.Source) error {
	if err := h.u.Apply(doc, string(src)); err != nil {
		return err
	}
	if h.rs.writer != nil {
		h.rs.writer.Store(doc) // written soon, coalesced with the next ones
	}
	return nil
}

func (h *remoteHandler) Status(st stream.Status) {
	if st.Healthy {
		h.u.Healthy(string(st.Source))
		return
	}
	h.u.Failed(string(st.Source), st.Err, st.Fatal)
}
