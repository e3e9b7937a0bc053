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
//	http.ListenAndServe("127.0.0.1:8080", srv)
//
// # Endpoints
//
//   - GET /v1/flags: the whole document, with ETag "EPOCH:VERSION";
//     If-None-Match with that tag (or *) answers 304.
//   - GET /v1/stream: text/event-stream. The first event is a snapshot (the
//     document) unless the client's Last-Event-ID has this server's epoch and
//     every patch after it is still in the replay ring: then those patches
//     are replayed instead (none at all when the client is up to date).
//     Then one patch event per change, {"version":N,"flags":{KEY:FLAG|null},
//     "segments":{KEY:SEGMENT|null}}, both members always present; every
//     event id is EPOCH:VERSION. A ": ping" comment is sent every
//     Options.HeartbeatInterval (15 s).
//   - PUT and DELETE /v1/admin/flags/{key} and /v1/admin/segments/{key},
//     only when Options.AdminToken is set (otherwise every /v1/admin/ path
//     answers 404) and only with that token. A success answers 200 with the
//     data of the one patch it published. Errors are JSON:
//     {"error": MESSAGE, "problems": [{"path": "flags.KEY.FIELD", "field":
//     "FIELD", "message": ...}]}: 400 for a body that is not a valid flag or
//     segment (not JSON, malformed in any way, or making another flag
//     malformed, such as a prerequisite cycle; problems name each field), or
//     an invalid key (field "key"); 404 to delete a key that is not served;
//     409 when the Store refuses (see FileStore); 413 for a body over
//     Options.MaxBodyBytes or a document that would exceed
//     Options.MaxDocumentBytes.
//
// Reads need "Authorization: Bearer TOKEN" when Options.Token is set; the
// admin token also authorizes them. A missing token is answered 401 (with
// WWW-Authenticate), a wrong one 403. Tokens are compared in constant time.
//
// # Versions
//
// The server owns the version numbers (SPEC §1). The snapshot version starts
// at the loaded document's version and grows by exactly one per published
// patch, whatever files say later. A flag's (or segment's) "version" member
// is rewritten by the server: at load it is the document's (0 when absent or
// not an integer); whenever the flag's content changes it is one more than
// the version served; a key deleted and added again continues from its old
// version; a new key keeps the version its source gives, at least 1 (it
// changed from nothing). Content is compared
// without the "version" member and without formatting, so a file rewritten
// with another layout, or other version numbers only, publishes nothing. An
// admin PUT always publishes (and bumps), even of identical content. Unknown
// members of flags and segments are kept and published.
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
// gets its own deadline, so a slow link that keeps reading is served). A
// dropped client reconnects with its Last-Event-ID and is replayed what it
// missed. Over HTTP/1.x a stream answers "Connection: close": its
// connection is not reused, so no write deadline outlives it. The replay ring keeps the last
// Options.ReplayPatches patches, at most Options.ReplayBytes bytes of them.
//
// Close ends every stream cleanly (the client sees the end of the stream and
// reconnects), stops watching the store and waits for both; then the stream
// and admin API answer 503 while GET /v1/flags keeps answering, so
// http.Server.Shutdown can finish the remaining requests.
//
// # Stores
//
// A Store gives the server its content (Load), tells it when that may have
// changed (Watch), and makes admin writes durable (Write). The server diffs
// what a store loads against what it serves and publishes the difference as
// one patch. MemoryStore keeps a document in memory; FileStore reads a file
// or a folder of *.json files and polls them. Only a document that is not
// JSON or has the wrong top-level shape is rejected by a FileStore: flags
// that are merely malformed are served as malformed (clients report
// MALFORMED_FLAG for them) and logged. A flag or segment whose value is null
// in a document is ignored (a patch would read it as a delete).
//
// Server.Publish replaces the content from the program instead; it does not
// write to the store.
package server
