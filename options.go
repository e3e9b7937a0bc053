package flags

import (
	"errors"
	"log/slog"
	"time"
)

// Option configures New. The set of options is closed: use the With...
// constructors.
type Option interface {
	apply(*config) error
}

type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

type config struct {
	logger  *slog.Logger
	clock   func() time.Time
	fileIvl time.Duration // how often WithFile checks its file; 0: fileSourceInterval
	sources []Source

	hooks     []Hook
	metrics   bool
	eventsOff bool
	exporter  Exporter
	eventOpts EventOptions
}

// WithSource feeds the client from s: a flagstream server (package
// stream), a test fake (package flagstest) or a Source of your own. A client
// has exactly one source.
//
//	client, err := flags.New(flags.WithSource(stream.New(stream.Config{
//		BaseURL: "https://flags.internal", Token: os.Getenv("FLAGS_TOKEN")})))
func WithSource(s Source) Option {
	return optionFunc(func(c *config) error {
		if s == nil {
			return errors.New("flags: WithSource: nil source")
		}
		c.sources = append(c.sources, s)
		return nil
	})
}

// WithDocument feeds the client a fixed flag document (JSON, SPEC §1). New
// fails if it is not a valid document.
func WithDocument(data []byte) Option {
	return optionFunc(func(c *config) error {
		if data == nil {
			return errors.New("flags: WithDocument: nil document")
		}
		c.sources = append(c.sources, &documentSource{data: data})
		return nil
	})
}

// WithFile feeds the client the JSON document at path and reloads it when
// it changes. New fails if the file cannot be read or is not a valid
// document; later, a bad edit is logged and the last good flags stay in
// force.
func WithFile(path string) Option {
	return optionFunc(func(c *config) error {
		if path == "" {
			return errors.New("flags: WithFile: empty path")
		}
		c.sources = append(c.sources, &fileSource{path: path})
		return nil
	})
}

// WithLogger sends the client's logs to l, at every level, and its
// source's unless the source has a logger of its own. By default warnings
// and errors go to slog.Default() (the default in force when each record is
// logged) and nothing else is logged; pass slog.New(slog.DiscardHandler) to
// silence the client.
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
var ErrNoSource = errors.New("flags: no source of flags (use WithDocument, WithFile or WithSource)")

// source validates the options' sources and returns the one source.
// eventExporter is where the client's events go: nowhere when they are off,
// else WithEventExporter's, else the source's server, else nowhere.
func (c *config) eventExporter(src Source) Exporter {
	switch {
	case c.eventsOff:
		return nil
	case c.exporter != nil:
		return c.exporter
	}
	if s, ok := src.(EventExporterSource); ok {
		return s.EventExporter()
	}
	return nil
}

func (c *config) source() (Source, error) {
	switch len(c.sources) {
	case 0:
		return nil, ErrNoSource
	case 1:
	default:
		return nil, errors.New("flags: more than one source (WithDocument, WithFile, WithSource): a client has one")
	}
	if f, ok := c.sources[0].(*fileSource); ok {
		// A fresh one for each client: the option may be used again.
		fs := &fileSource{path: f.path, interval: fileSourceInterval}
		if c.fileIvl > 0 {
			fs.interval = c.fileIvl
		}
		return fs, nil
	}
	return c.sources[0], nil
}
