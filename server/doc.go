// Package server is the flagstream reference server: the wire protocol of
// SPEC §5 on net/http, over a Store of flag documents. `flags serve` is this
// package over a FileStore; programs can embed it, and tests can mount it in
// an httptest.Server.
//
//	store, err := server.OpenFileStore("flags.json", server.FileStoreOptions{Logger: logger})
//	...
//	srv, err := server.New(store, server.Options{Token: sdkToken, AdminToken: adminToken, Logger: logger})
//	...
//	defer srv.Close()
//	hs := &http.Server{Addr: "127.0.0.1:8080", Handler: srv, ConnContext: server.ConnContext}
//	hs.ListenAndServe()
//
// # Endpoints
//
//   - GET /v1/flags: the whole document, with ETag "EPOCH:VERSION";
//     If-None-Match with that tag (or *) answers 304.
//   - GET /v1/stream: text/event-stream. The first event is a snapshot (the
//     document) unless the client's Last-Event-ID has this server's epoch and
//     every patch after it is still in the replay ring: then those patches
//     are replayed instead (none at all when the client is up to date);
//     the answer's Flags-Stream-Start header (rules.StreamStartHeader) says
//     which: "snapshot" or "resume". Then one patch event per change, {"version":N,"flags":{KEY:FLAG|null},
//     "segments":{KEY:SEGMENT|null}}, both members always present; every
//     event id is EPOCH:VERSION. A ": ping" comment is sent every
//     Options.HeartbeatInterval (10 s; SPEC §5 asks at least every 15 s).
//   - GET, PUT and DELETE /v1/admin/flags/{key} and /v1/admin/segments/{key},
//     only when a token may use them (an operator or admin token: see
//     Roles; otherwise every /v1/admin/ path answers 404). GET answers the object as
//     served with ETag "V", V its per-object version (If-None-Match: 304).
//     PUT takes the object as its body: a JSON object (null, arrays,
//     strings, numbers and booleans are refused with 400), as the document
//     parser reads it where it stands in a document (the third level: its
//     nesting limit and UTF-8 checks apply). A success answers 200 with the
//     data of the one patch it published, and a PUT the object's new ETag.
//   - PATCH /v1/admin/flags/{key} and /v1/admin/segments/{key}: a JSON
//     merge patch (RFC 7396) with Content-Type application/merge-patch+json
//     (any other type is 415), a JSON object read like a PUT body, applied
//     to the object as served (404 when there is none). The result is
//     checked and published exactly like a PUT of it; the object keeps its
//     members' order and the bytes of those the patch leaves alone, so
//     {"on": false}, the kill switch, changes that member only (in a
//     FileStore's file, the bytes of its value and the version's, whatever
//     the flag's layout).
//   - PUT /v1/admin/document: a whole document that replaces every flag
//     and segment at once (GitOps: `flags push`), as one patch at the next
//     version holding what changed (nothing changed: nothing published, the
//     current version answered). A document that is invalid, or holds a
//     null or malformed flag or segment, is refused with 400 listing every
//     problem; nothing changes. If-Match takes the snapshot's ETag
//     "EPOCH:VERSION" (412 when another version is served). The body may be
//     as large as Options.MaxDocumentBytes. A store made of files writes
//     each key where it is defined (see FileStore).
//   - GET /v1/admin/audit?key=K&kind=flag|segment&since=V&limit=N&after=C:
//     the audit log (below), {"entries":[...],"next":C}.
//
// Concurrency (SPEC §10): PUT, PATCH and DELETE accept If-Match: "V" (a list, or
// *) and answer 412 unless the object exists at one of those versions;
// If-Match compares strongly, so W/"V" never matches. If-None-Match: *
// (or a tag of the current version) answers 412 when the object exists: a
// PUT that must only create. A 412 carries the current ETag. Two editors
// that both send the ETag they read cannot both win.
//
// Errors are JSON: {"error": MESSAGE, "problems": [{"path":
// "flags.KEY.FIELD", "field": "FIELD", "message": ...}]}: 400 for a body
// that is not a valid flag or segment (not a JSON object, malformed in any
// way, or making another flag malformed, such as a prerequisite cycle;
// problems name each field), an invalid key (field "key") or an unreadable
// If-Match; 404 to delete a key that is not served; 409 when the Store
// refuses (see FileStore), when the key was changed in the store by hand
// meanwhile, or when a version is exhausted; 412 for a failed precondition;
// 413 for a body over Options.MaxBodyBytes or a document that would exceed
// Options.MaxDocumentBytes.
//
// # Roles
//
// Every token has a name and a role (SPEC §10): Options.Token is "token"
// and Options.PreviousTokens "previous-1"... (readers), Options.AdminToken
// is "admin" (admin), and Options.Tokens and the tokens file
// Options.TokensFile (`flags serve --tokens FILE`: [{"name","role",
// "sha256"}], the SHA-256 of the secret, never the secret; see ParseTokens)
// add any others. The file is read again whenever it changes; one that does
// not parse, or clashes with the other tokens, is logged and the previous
// tokens stay.
//
//   - reader: GET /v1/flags, the stream (and events).
//   - operator: a reader's requests, GET of admin objects and of the audit
//     log (and experiments), and a PATCH of a flag whose only effect is to
//     change "on": the kill switch. Any other PATCH is 403.
//   - admin: everything.
//
// A request without a token, or with one the server does not know, is
// answered 401 (with WWW-Authenticate); a known token without the role, 403.
// Reads need no token while no reader token exists (no Options.Token, no
// token of role reader). Tokens are compared as SHA-256 digests, in constant
// time, every one of them whatever matches. The name of the token accepted
// is the actor of the audit log and the token of the access log.
//
// # Audit
//
// Every accepted change is recorded in the Store's audit log before it is
// published (and so before an admin write is answered), one AuditEntry per
// flag or segment changed: {"version","at","actor","action","kind","key",
// "before","after","comment"}. version is the snapshot version the change
// was published as (a push of N keys: N entries of one version); actor is
// the name of the request's token (see Roles) or, for what the server did
// by itself, "file" (a reload: the store changed by other means, a hand
// edit or another replica's write to a shared file), "program"
// (Server.Publish) or "guard"; action is put, patch, delete, push, reload
// or guard; before and after are the object as served (null when absent);
// comment is the request's X-Flags-Comment header (UTF-8, at most
// MaxCommentBytes, no control characters; else 400). When the store cannot
// record a change, nothing is published: an admin write answers 500, a
// reload is tried again every second until it can be recorded.
//
// GET /v1/admin/audit answers entries in the order written (version
// order), those of a version greater than since (default 0), of the key and
// kind given (default all), at most limit (default DefaultAuditLimit, cut to
// MaxAuditLimit). When there may be more, "next" is the cursor to pass as
// after, with the same other parameters, for the following page: paging
// never skips an entry, even among the many of one push. A FileStore keeps
// its log in a file of JSON lines beside the document (FileStoreOptions.
// AuditPath), synced before Write returns; a page reads at most 8 MiB of
// it, so a query that selects little of a large log may answer a "next"
// with few entries. The log outlives the server: a server started again
// over it continues from its versions (see Versions), so since reads it
// by version across restarts too.
//
// # Access log
//
// Every request is logged when it ends (a stream when it closes), as one
// Info record to Options.AccessLogger (by default Options.Logger):
//
//	time=2026-12-03T08:20:48.718Z level=INFO msg="flags: request" method=GET path=/v1/stream status=200 bytes=48213 duration=2h3m1.2s token=previous-1 remote=10.0.3.7:52144
//
// (as slog.TextHandler writes it, which `flags serve` uses on stderr). token
// names the token that was accepted, never the token itself: "token"
// (Options.Token), "admin" (Options.AdminToken), "previous-N"
// (Options.PreviousTokens[N-1]), a name of Options.Tokens or the tokens
// file, or "-" when none was (a read of an open server, a token refused
// with 401; one refused with 403 is named). It costs an allocation or two a request; a
// logger whose handler is not enabled for Info costs nothing.
//
// # Versions
//
// The server owns the version numbers (SPEC §1). The snapshot version starts
// at the loaded document's version and grows by exactly one per published
// patch, whatever files say later. A flag's (or segment's) "version" member
// is rewritten by the server: at load it is the document's (0 when absent or
// not an integer); whenever the flag's content changes it is one more than
// the version served; a key deleted and added again continues from its old
// version while the patch that deleted it is in the replay window (see
// History; later it is a new key again); a new key keeps the version its
// source gives, at least 1 (it changed from nothing). Content is compared
// without the "version" member and without formatting, so a file rewritten
// with another layout, or other version numbers only, publishes nothing. An
// admin PUT always publishes (and bumps), even of identical content. Unknown
// members of flags and segments are kept and published, in their order; a
// "version" member the object lacks is added first.
//
// Over a FileStore the snapshot version starts at the greatest version in its
// audit log instead, when that is greater: admin writes leave the file's
// own "version" alone, and a restart must not publish versions the log
// already holds (SPEC §10 reads it in version order). The epoch is new all
// the same.
//
// Versions never wrap. A document whose version is near math.MaxInt64 is
// served as any other; once the snapshot version (or an object's) is
// math.MaxInt64, changes are refused with ErrVersionExhausted (409 for the
// admin API, logged for a reload) until the server is restarted from a
// document of a lower version (and, over a FileStore, with its audit log
// moved aside), which starts a new epoch.
//
// The epoch is random per Server unless Options.Epoch is set: a restart
// starts a new history, so a client can never mistake it for its own.
//
// # Streams and slow clients
//
// Publishing never waits for a subscriber. Each subscriber has a queue of
// Options.SubscriberQueue events; one whose queue is full is dropped (the
// write it is stuck in is cut short at once), and so is one whose writes
// make no progress for Options.WriteTimeout (each write of up to 64 KiB
// gets its own deadline, so a slow link that keeps reading is served, down
// to about 13 KB/s when the http.Server has ConnContext, which keeps the
// kernel's send buffer small enough for progress to show). A dropped client
// reconnects with its Last-Event-ID and is replayed what it missed. Over HTTP/1.x a stream answers "Connection: close": its
// connection is not reused, so no write deadline outlives it.
//
// Streams need a ResponseWriter that flushes. Behind a middleware whose
// ResponseWriter has neither a Flush nor an Unwrap method, events would wait
// in a buffer for ever: the stream is answered 500 instead, and the reason
// logged, before any stream byte. One that flushes but does not unwrap
// cannot take write deadlines: it streams, and a warning is logged once.
//
// # Health and shutdown
//
// GET /healthz answers 200 while the process runs; GET /readyz answers 200
// while the server has a snapshot, is not shutting down, and its store can
// be reached (a Store that implements Pinger is asked; a FileStore checks
// that its path and its audit log's folder are there), else 503 with the
// reason. Neither needs a token: point liveness and readiness probes and
// load balancers' health checks at them.
//
// Close shuts down gracefully: from its start new admin writes and new
// streams are answered 503 with Retry-After (and /readyz 503); the admin
// writes already admitted finish and publish; every stream is then sent
// what is queued for it (a final flush) and ended cleanly (the client sees
// the end of the stream and reconnects, to another replica); Close waits
// for all of it. GET /v1/flags keeps answering, so http.Server.Shutdown can
// finish the remaining requests. `flags serve` does this on SIGTERM or
// SIGINT, after closing its listener.
//
// # History
//
// The replay window keeps the last Options.ReplayPatches patches (10,000,
// as SPEC §10 asks of a change log), at most Options.ReplayBytes (64 MiB)
// of them, whichever bound is reached first. Deleted keys' tombstones are
// kept as long as the patch that deleted them is in the window. Nothing
// else grows with the number of changes, so the server's memory is bounded
// by its content and the window (SPEC §13).
//
// # Stores
//
// A Store gives the server its content (Load), tells it when that may have
// changed (Watch), makes every published change durable (Write) and reads
// the audit log (Audit). Each published change is one Commit: the version
// it is published as, the flags and segments it writes (one for PUT, PATCH
// and DELETE, many for a push, none for a reload of what the store already
// holds) and its audit entries, written all or nothing before the server
// publishes or answers. A Write that finds the content changed by other
// means since the last Load returns ErrStale: the server loads and
// publishes that change first (its own patch) and writes again on top of
// it, or answers 409 when the change touched the key being written; a hand
// edit is never lost. The server diffs what a store loads against what it
// serves and publishes the difference as one patch. MemoryStore keeps a
// document in memory; FileStore reads a file or a folder of *.json files
// and polls them. Only a document that is not JSON or has the wrong
// top-level shape is rejected by a FileStore: flags that are merely
// malformed are served as malformed (clients report MALFORMED_FLAG for
// them) and logged. A flag or segment whose value is null in a document is
// ignored (a patch would read it as a delete). Whatever the store, every
// value is read by the document parser before it is served (SPEC §13:
// valid UTF-8, nesting); New and Publish refuse content it refuses, naming
// the key.
//
// A FileStore's admin writes change only the written keys' bytes in its
// files; see FileStore for how, for the lock that programs editing the file
// while the server runs can take, and for how a push maps onto a folder.
//
// Server.Publish replaces the content from the program instead; over a
// FileStore or a MemoryStore it does not write the content to the store
// (it records the change in the audit log).
//
// # Stores shared by replicas: the Ledger seam
//
// With the stores above every server owns its versions and its epoch: two
// replicas over one file number the same content each in its own way. A
// store that several replicas share as their source of truth (a database,
// SPEC §10) implements Ledger as well, which the server detects:
//
//   - Epoch: the store's identity is the server's epoch, the same on every
//     replica (Options.Epoch must be empty).
//   - Write: the store commits the Commit's changes, its audit entries and
//     the step of one store-wide version counter in one transaction, only
//     when Commit.Version is the counter's next value; else ErrStale. The
//     server then catches up and prepares the request again on what it now
//     serves — If-Match is checked again, so a stale tag is 412 on every
//     replica — and proposes the next version. Versions stay gapless.
//   - Watch: a notification (LISTEN/NOTIFY) that another replica
//     committed.
//   - Changes: the change log. The server applies the commits after its
//     version one by one, as patches at their own versions with the
//     per-object versions their writer gave, without auditing them again;
//     a stream that resumes with a Last-Event-ID the server's own replay
//     ring no longer covers is replayed from it; a log that no longer
//     reaches back (ErrHistoryGone) makes the server load everything and
//     publish it at the store's version (clients resync on the gap).
//   - ErrUnavailable: admin writes answer 503 with Retry-After, reads and
//     streams go on from the last snapshot, and the server catches up
//     every second until the store answers. Pinger makes /readyz say so.
//   - Audit reads the audit table; Publish writes through Write.
//
// The tests hold an in-memory model of such a store (ledger_test.go) that
// two servers share: the seam's behaviour — same versions on every
// replica, gapless under concurrent writes to both, failover replayed from
// the log, resync past the log, outages — is tested there.
package server
