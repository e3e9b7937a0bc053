package server

import (
	"log/slog"
	"net/http"
	"time"
)

// The names of the tokens in the access log (SPEC §10: the server's own
// tokens are named token and admin). A token is never logged itself.
const (
	// TokenName names Options.Token.
	TokenName = "token"
	// AdminTokenName names Options.AdminToken.
	AdminTokenName = "admin"
)

// accessWriter records what the access log reports of a response. It
// unwraps to the writer it wraps, so http.ResponseController (flushes,
// deadlines) reaches the connection through it.
type accessWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
	token  string // the name of the token accepted; "-" for none
}

func (w *accessWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *accessWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// Unwrap returns the wrapped writer, for http.ResponseController.
func (w *accessWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// log writes the access log record of r, which started at start.
func (w *accessWriter) log(l *slog.Logger, r *http.Request, start time.Time) {
	status := w.status
	if status == 0 {
		status = http.StatusOK // nothing written: net/http answers 200
	}
	l.LogAttrs(r.Context(), slog.LevelInfo, "flags: request",
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Int("status", status),
		slog.Int64("bytes", w.bytes),
		slog.Duration("duration", time.Since(start)),
		slog.String("token", w.token),
		slog.String("remote", r.RemoteAddr))
}

// LogActor names actor as the token of the request's access-log record. It
// is for a handler the server serves (Options.Console) that signs people
// in its own way: the console names the session's token, so that the
// record of a page or form says who, as an API request's does. w is the
// ResponseWriter the server handed the handler, or one that unwraps to it;
// another writer is left alone.
func LogActor(w http.ResponseWriter, actor string) {
	for {
		switch x := w.(type) {
		case *accessWriter:
			x.token = actor
			return
		case interface{ Unwrap() http.ResponseWriter }:
			w = x.Unwrap()
		default:
			return
		}
	}
}
