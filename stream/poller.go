package stream

import (
	"context"
	"errors"
)

// poller fetches GET /v1/flags every Config.PollInterval and hands every
// new document to the client: a Source's Run with Config.Poll.
//
// Each request carries If-None-Match with the ETag of the document the
// client last accepted; 304 means no change. A failed poll is retried
// after a Backoff wait (a Retry-After on 429/503 is a floor) instead of the
// poll interval, and a successful poll resets the failure count. 401 and 403
// are final.
type poller struct {
	cfg *settings
}

// run polls until ctx is done (it then returns nil) or the server refuses
// the token (it returns a *StatusError that matches ErrUnauthorized).
// Documents and statuses carry OriginPoll.
func (p *poller) run(ctx context.Context, o *out) error {
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
				o.report(status{origin: OriginPoll, fatal: true, err: err})
				p.cfg.Logger.Error("flags: poll: server refused the token; stopping", "err", err)
				return err
			}
			wait := bo.Failure(p.cfg.Now(), retryAfterOf(err))
			p.cfg.Logger.Warn("flags: poll: failed; retrying", "err", err, "failures", bo.Failures(), "wait", wait)
			o.report(status{origin: OriginPoll, err: err})
			_ = p.cfg.Sleep(ctx, wait)
			continue
		}
		bo.Reset()
		if !res.notModified {
			if err := o.apply(res.doc, OriginPoll); err != nil {
				// The ETag is not remembered: the next poll fetches the
				// document again rather than trusting the rejected one.
				p.cfg.Logger.Warn("flags: poll: client rejected the document", "version", res.doc.Version, "err", err)
			} else {
				etag = res.etag
			}
		}
		o.report(status{origin: OriginPoll, healthy: true})
		_ = p.cfg.Sleep(ctx, p.cfg.PollInterval)
	}
	return nil
}
