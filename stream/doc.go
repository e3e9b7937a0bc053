// Package stream keeps a flags.Client in sync with a flagstream server: the
// client side of the wire protocol (SPEC §5), as a flags.Source. Importing
// it is the opt-in: package flags itself depends on the standard library
// only, and this package brings the SSE reader (github.com/r3labs/sse/v2)
// and what it needs.
//
//	client, err := flags.New(flags.WithSource(stream.New(stream.Config{
//		BaseURL: "https://flags.example",
//		Token:   os.Getenv("FLAGS_TOKEN"),
//		Cache:   "/var/cache/myservice/flags.json", // optional
//	})))
//
// # The Source
//
// New takes a Config, of which only BaseURL is required, and starts
// nothing; a bad Config is reported by Load and Run, so flags.New fails
// before anything starts. The Source follows GET /v1/stream (server-sent
// events) or, with Config.Poll, fetches GET /v1/flags every PollInterval
// with If-None-Match. Config.Cache adds a last-known-good file, read by
// Load and kept current by Run.
//
// It talks to the client through flags.Updates, as every source does. Load
// reports it healthy (so the client's Status names it, "stream" or "poll",
// from the start) and applies the cached document, if any, with
// flags.OriginCache. Run applies every document it learns, whole, with the
// origin it came by (OriginStream, OriginPoll), one call at a time from the
// goroutine running Run, until its context is done (Run returns nil) or the
// server refuses the token (Run returns an error matching ErrUnauthorized).
// A document the client rejects (Apply returns an error) leaves the
// source's state unchanged, so the next patch shows a version gap (or
// another epoch) and the source resyncs. Every change of health is
// reported once (exact repeats are not): Healthy when a stream connection
// is accepted (once its snapshot is applied, when it starts with one: see
// rules.StreamStartHeader) or a poll succeeds, Failed with the error on each failure (a
// *StatusError carries the HTTP status), fatal on 401/403.
//
// # Failure policy
//
// The numbered policy is written at the top of streamer.go, backed by the
// constants BackoffBase, BackoffMax, BackoffResetAfter, MaxRetryAfter,
// FallbackPollAfter, MinRequestTimeout, MaxRequestTimeout and the defaults
// of Config. In short: 401/403 stop the client after one request;
// everything else (network errors, other statuses, a clean end of stream,
// 45 s without a complete event or ping, a GET past its deadline, a
// redirect to another origin) is retried with the exponential Backoff, a
// Retry-After being a floor; the client keeps its last good document
// meanwhile. Patches are applied only in sequence; a gap, an event of
// another epoch or an event that does not decode makes the client resync
// (reconnect without Last-Event-ID, which brings a snapshot).
//
// Bounded cost (SPEC §13): no request waits forever — a GET /v1/flags has
// an overall deadline (RequestTimeout: the poll interval, 1 to 30 s), and a
// stream connection must bring its headers, then a complete event or
// comment line, every IdleTimeout; the token goes only to the origin of
// BaseURL (no redirect elsewhere, never https to http); events and
// snapshots have size limits (MaxEventSize, MaxSnapshotSize); and URLs in
// errors and logs have their password redacted.
//
// # Decisions where the SPEC is silent
//
//   - Malformed events resync (rule 8): a patch that cannot be decoded has
//     lost a version, and waiting for the next patch to reveal the gap could
//     leave the client silently behind for hours. A resync counts as a
//     failure for the backoff, so a server that keeps sending bad data is
//     retried at most every 30 s rather than in a loop.
//   - Polling as the stream's fallback (rule 11): once the stream has failed
//     FallbackPollAfter (2) times in a row, each backoff wait starts with a
//     conditional GET /v1/flags, at most once per PollInterval. A document
//     so fetched is applied with OriginPoll, and the stream later resumes
//     from its ETag ("EPOCH:VERSION" becomes the Last-Event-ID). While that
//     fallback is healthy the Source reports Healthy(OriginPoll) and only
//     logs the stream's failures.
//   - An event over MaxEventSize (rule 10) is taken with GET /v1/flags and
//     the stream resumes from its ETag at once; such documents are applied
//     with OriginPoll, since that is how they arrived.
//   - HTTPClient.Timeout applies to GET /v1/flags only, on top of its own
//     deadline, RequestTimeout(PollInterval): the poll interval kept within
//     [MinRequestTimeout, MaxRequestTimeout] = [1 s, 30 s]. The floor keeps
//     sub-second poll intervals (tests) from failing every request on a
//     busy machine. A stream connection has no overall deadline (it is
//     meant to last): IdleTimeout counts from the request until the
//     headers, then between complete events or comment lines. Bytes of an
//     event in progress do not reset it, so a server trickling bytes is
//     dropped as idle; the price is that one event must arrive whole within
//     IdleTimeout (1 MiB in 45 s is 23 KB/s), and larger documents come
//     through GET /v1/flags anyway (rule 10).
//   - A redirect to another scheme, host or port than BaseURL's is refused
//     (ErrRedirectRefused) even when no token is configured: the client
//     talks to one origin, whose URL also keys the cache. Within the origin,
//     redirects are followed (HTTPClient.CheckRedirect, when set, decides
//     on them).
//   - Logging: Config.Logger, or by default the client's logger
//     (flags.Updates.Logger: flags.WithLogger, else slog.Default() for
//     warnings and errors only); the package never writes to stdout or
//     stderr itself.
//   - A Retry-After longer than MaxRetryAfter (1 h) is cut to it.
//   - A poll whose document the client rejects does not remember its ETag,
//     so the next poll fetches the document again.
//
// # The SSE reader
//
// The stream is read with github.com/r3labs/sse/v2 used only as an event
// reader: one sse.Client per connection, its ReconnectStrategy set to
// backoff.StopBackOff (our loop reconnects, with our Backoff), a
// ResponseValidator that turns statuses into *StatusError and checks the
// content type, ClientMaxBufferSize(MaxEventSize), and an http.Client whose
// transport follows the lines of the body and kicks our idle watchdog on
// every complete event or comment line (r3labs does not deliver ": ping"
// comments, so silence cannot be seen from its events). r3labs reports an
// event over its buffer as bufio.ErrTooLong, which rule 10 handles.
//
// r3labs imports gopkg.in/cenkalti/backoff.v1 (2017) unconditionally:
// Client.ReconnectStrategy is a backoff.BackOff and every subscription runs
// through backoff.RetryNotify. No option removes it, so that module stays
// in the build (with the golang.org/x/net it needs, kept current in
// go.mod). Its retry logic is not used: ReconnectStrategy is
// backoff.StopBackOff, and reconnection is this package's own Backoff.
//
// The event-stream "retry:" field is ignored: reconnection timing is the
// Backoff's. There is no Close method: cancel the context given to Run, which
// returns once every goroutine the client started has ended.
//
// One r3labs behaviour is tolerated rather than fixed: at end of stream it
// dispatches an event cut before its blank line, which the SSE
// specification says to discard. It cannot install a wrong document here:
// a cut inside a data line leaves JSON that does not parse (rejected), and
// a JSON object that parses whole is the complete data of that line (a
// later data line would have made the whole invalid). Events that arrive
// after the client itself dropped the connection (idle, resync, cancel)
// are ignored. And when the body ended (EOF or error) inside an event (in a
// field line, or after field lines with no blank line to end them), an
// event whose data does not decode is taken for that cut, not for bad
// data: the client resumes with Last-Event-ID instead of forcing a resync.
//
// Measured (go test, loopback): a 10^7-byte snapshot read through GET
// /v1/flags after the 1 MiB reader limit tripped is applied in well under a
// second; the same event through the r3labs reader with MaxEventSize 16 MiB
// took about 0.3 s.
//
// # Last-known-good cache
//
// WriteCache stores a document with the base URL it came from (password
// redacted) and a SHA-256 of the document bytes, atomically (temporary file
// in the same directory, fsync, rename, fsync of the directory). ReadCache
// refuses a file that is corrupt, truncated or of another format
// (ErrCacheCorrupt) or written for another base URL (ErrCacheForeignURL).
// Load applies a cached document with origin flags.OriginCache, which the
// client serves as STALE until the server delivers.
//
// Run writes the documents applied through WriteCache, coalesced: at most
// one write per CacheWriteInterval (100 ms), always the latest, and the
// last one before Run returns; a burst of patches does not cost two fsyncs
// each, which would cap the patch rate at the disk's. Run first removes the
// temporary files WriteCache left for the same file (".NAME.tmp-DIGITS")
// when a process was killed mid-write, and no other file: give each client
// a cache file of its own.
package stream
