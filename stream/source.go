package stream

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/flagstream/flags"
	"github.com/flagstream/flags/internal/logging"
)

// Source keeps a flags.Client in sync with a flagstream server (SPEC §5):
// it follows the server-sent event stream — or, with Config.Poll, polls
// GET /v1/flags — and keeps the last-known-good file of Config.Cache. It
// implements flags.Source and flags.Loader:
//
//	client, err := flags.New(flags.WithSource(stream.New(stream.Config{
//		BaseURL: "https://flags.internal",
//		Token:   os.Getenv("FLAGS_TOKEN"),
//		Cache:   "/var/cache/myservice/flags.json",
//	})))
//
// A Source holds no connection of its own: every Run starts from nothing,
// so one Source may feed several clients.
type Source struct {
	cfg *settings // nil when err is set
	err error     // what was wrong with the Config
}

// New returns a Source for cfg. It starts nothing and cannot fail: a bad
// Config (no BaseURL, a scheme other than http and https, a negative
// duration...) is reported by Load and Run, hence by flags.New, before
// anything starts.
func New(cfg Config) *Source {
	s, err := cfg.resolve()
	return &Source{cfg: s, err: err}
}

// Load checks the Config, reports the source healthy (nothing has failed
// yet: the client's Status names it, "stream" or "poll", from the start)
// and, when Config.Cache names a readable cache of the same BaseURL,
// applies its document with origin flags.OriginCache: the client serves it,
// STALE, until the server delivers. A missing cache is not an error, nor is
// a corrupt or foreign one (it is logged and ignored). flags.New calls Load
// before Run.
func (s *Source) Load(u flags.Updates) error {
	if s.err != nil {
		return s.err
	}
	if u == nil {
		return errors.New("flags: stream: nil Updates")
	}
	// Nothing has failed yet: this names the source in the client's
	// Status (INITIALIZING, source "stream" or "poll") until it delivers.
	u.Healthy(s.origin())
	if s.cfg.Cache == "" {
		return nil
	}
	log := s.logger(u)
	doc, err := ReadCache(s.cfg.Cache, s.cfg.BaseURL)
	if errors.Is(err, fs.ErrNotExist) {
		log.Debug("flags: no last-known-good cache yet", "path", s.cfg.Cache)
		return nil
	}
	if err != nil {
		log.Warn("flags: ignoring the last-known-good cache", "path", s.cfg.Cache, "err", err)
		return nil
	}
	return u.Apply(doc, flags.OriginCache)
}

// Run follows the server until ctx is done, then returns nil; or until the
// server refuses the token (401/403, reported to u as fatal), then returns
// an error matching ErrUnauthorized. Meanwhile it reports every document to
// u.Apply (origin OriginStream or OriginPoll) and every change of health to
// u.Healthy and u.Failed, following the failure policy in the package
// documentation; with Config.Cache it writes the documents applied to the
// cache file, the last one before it returns. When Run returns, every
// goroutine it started has ended.
func (s *Source) Run(ctx context.Context, u flags.Updates) error {
	if s.err != nil {
		return s.err
	}
	if u == nil {
		return errors.New("flags: stream: nil Updates")
	}
	cfg := *s.cfg
	cfg.Logger = s.logger(u)
	o := &out{u: u}
	if cfg.Cache != "" {
		o.cache = newCacheWriter(cfg.Cache, cfg.BaseURL, cfg.Logger)
		// The writer stops after the stream: what the last Apply stored is
		// written before Run returns, hence before flags.Client.Close does.
		wctx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			o.cache.Run(wctx)
		}()
		defer func() {
			stop()
			<-done
		}()
	}
	var err error
	if cfg.Poll {
		err = (&poller{cfg: &cfg}).run(ctx, o)
	} else {
		err = (&streamer{cfg: &cfg}).run(ctx, o)
	}
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("flags: %s stopped: %w", redactURL(cfg.BaseURL), err)
	}
	return nil
}

// origin is the origin of the source's health: OriginPoll when polling,
// OriginStream otherwise.
func (s *Source) origin() string {
	if s.cfg.Poll {
		return OriginPoll
	}
	return OriginStream
}

// logger is Config.Logger, or else the client's.
func (s *Source) logger(u flags.Updates) *slog.Logger {
	if s.cfg.Logger != nil {
		return s.cfg.Logger
	}
	if l := u.Logger(); l != nil {
		return l
	}
	return logging.Default()
}

var (
	_ flags.Source = (*Source)(nil)
	_ flags.Loader = (*Source)(nil)
)
