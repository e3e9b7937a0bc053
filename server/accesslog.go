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
