package stream

import (
	"context"
	"errors"
)

// Poller fetches GET /v1/flags every Config.PollInterval and hands every new
// document to a Handler. Build one with NewPoller; it starts nothing until
// Run.
//
// Each request carries If-None-Match with the ETag of the document the
// handler last accepted; 304 means no change. A failed poll is retried
// after a Backoff wait (a Retry-After on 429/503 is a floor) instead of the
// poll interval, and a successful poll resets the failure count. 401 and 403
// are final.
type Poller struct {
	cfg *settings
}

// NewPoller validates cfg and returns a Poller. It starts nothing.
func NewPoller(cfg Config) (*Poller, error) {
	s, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	return &Poller{cfg: s}, nil
}

// Run polls until ctx is done (it then returns nil) or the server refuses
// the token (it returns a *StatusError that matches ErrUnauthorized).
// Documents are applied with SourcePoll; statuses carry SourcePoll.
func (p *Poller) Run(ctx context.Context, h Handler) error {
	if h == nil {
		return errors.New("flags: poll: nil Handler")
	}
	rep := reporter{h: h}
	bo := NewBackoff(p.cfg.Rand)
	etag := ""
	for ctx.Err() == nil {
		res, err := fetchFlags(ctx, p.cfg, etag)
		if ctx.Err() != nil {
			break
		}
		if err != nil {
			var se *StatusError
			if errors.As(err, &se) && se.Fatal() {
				rep.report(Status{Source: SourcePoll, Fatal: true, Err: err, HTTPStatus: se.Code})
				p.cfg.Logger.Error("flags: poll: server refused the token; stopping", "err", err)
				return err
			}
			wait := bo.Failure(p.cfg.Now(), retryAfterOf(err))
			p.cfg.Logger.Warn("flags: poll: failed; retrying", "err", err, "failures", bo.Failures(), "wait", wait)
			rep.report(Status{Source: SourcePoll, Err: err, HTTPStatus: httpStatusOf(err)})
			_ = p.cfg.Sleep(ctx, wait)
			continue
		}
		bo.Reset()
		if !res.notModified {
			if err := h.Apply(res.doc, SourcePoll); err != nil {
				// The ETag is not remembered: the next poll fetches the
				// document again rather than trusting the rejected one.
				p.cfg.Logger.Warn("flags: poll: handler rejected the document", "version", res.doc.Version, "err", err)
			} else {
				etag = res.etag
			}
		}
		rep.report(Status{Source: SourcePoll, Healthy: true})
		_ = p.cfg.Sleep(ctx, p.cfg.PollInterval)
	}
	return nil
}
