package flags

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/flagstream/flags/rules"
	"github.com/flagstream/flags/stream"
)

// Option configures New. The set of options is closed: use the With...
// constructors.
type Option interface {
	apply(*config) error
}

type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

type config struct {
	logger   *slog.Logger
	clock    func() time.Time
	document []byte
	file     string
	fileIvl  time.Duration
	sources  []Source
	remote   *remoteConfig
	cache    string
}

// WithDocument serves a fixed flag document (JSON, SPEC §1). New fails if it
// is not a valid document.
func WithDocument(data []byte) Option {
	return optionFunc(func(c *config) error {
		if data == nil {
			return errors.New("flags: WithDocument: nil document")
		}
		c.document = data
		return nil
	})
}

// WithFile serves the JSON document at path and reloads it when it changes.
// New fails if the file cannot be read or is not a valid document; later, a
// bad edit is logged and the last good flags stay in force.
func WithFile(path string) Option {
	return optionFunc(func(c *config) error {
		if path == "" {
			return errors.New("flags: WithFile: empty path")
		}
		c.file = path
		return nil
	})
}

// WithSource adds a custom source of documents.
func WithSource(s Source) Option {
	return optionFunc(func(c *config) error {
		if s == nil {
			return errors.New("flags: WithSource: nil source")
		}
		c.sources = append(c.sources, s)
		return nil
	})
}

// WithLogger sends the client's logs to l, at every level. By default
// warnings and errors go to slog.Default() (the default in force when each
// record is logged) and nothing else is logged; pass
// slog.New(slog.DiscardHandler) to silence the client.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) error {
		if l == nil {
			return errors.New("flags: WithLogger: nil logger")
		}
		c.logger = l
		return nil
	})
}

// WithClock replaces time.Now as the clock that progressive rollouts
// (schedules) are evaluated against. Tests and `flags eval --at` use it.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(c *config) error {
		if now == nil {
			return errors.New("flags: WithClock: nil clock")
		}
		c.clock = now
		return nil
	})
}

// ErrNoSource is returned by New when no option gives the client a source
// of flags: such a client would stay INITIALIZING forever.
var ErrNoSource = errors.New("flags: no source of flags (use WithDocument, WithFile, WithStream, WithPolling or WithSource)")

func (c *config) validate() error {
	if c.document == nil && c.file == "" && c.remote == nil && len(c.sources) == 0 {
		return ErrNoSource
	}
	if c.document != nil && c.file != "" {
		return errors.New("flags: WithDocument and WithFile are exclusive")
	}
	if c.remote != nil && (c.document != nil || c.file != "") {
		return errors.New("flags: a remote source (WithStream, WithPolling) excludes WithDocument and WithFile")
	}
	if c.cache != "" && c.remote == nil {
		return errors.New("flags: WithCache needs WithStream or WithPolling")
	}
	return nil
}

// buildSources loads the synchronous sources into cl and returns the ones
// that run in the background.
func (c *config) buildSources(cl *Client) ([]Source, error) {
	var out []Source
	switch {
	case c.document != nil:
		doc, err := rules.ParseDocument(c.document)
		if err != nil {
			return nil, fmt.Errorf("flags: WithDocument: %w", err)
		}
		if err := cl.install(doc, "document"); err != nil {
			return nil, err
		}
	case c.file != "":
		fs := &fileSource{path: c.file, interval: fileSourceInterval, logger: c.logger}
		if c.fileIvl > 0 {
			fs.interval = c.fileIvl
		}
		doc, sum, err := fs.load()
		if err != nil {
			return nil, err
		}
		fs.last = sum
		if err := cl.install(doc, "file"); err != nil {
			return nil, err
		}
		out = append(out, fs)
	case c.remote != nil:
		rs, err := newRemoteSource(c.remote, c.cache, c.logger)
		if err != nil {
			return nil, err
		}
		cl.health.source = string(stream.SourceStream)
		if c.remote.poll {
			cl.health.source = string(stream.SourcePoll)
		}
		cl.status.Store(&Status{State: StateInitializing, Source: cl.health.source})
		if doc := rs.loadCache(); doc != nil {
			if err := cl.install(doc, originCache); err != nil {
				return nil, err
			}
		}
		out = append(out, rs)
	}
	return append(out, c.sources...), nil
}
