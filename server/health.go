package server

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// Pinger is implemented by a Store that can tell whether its source can be
// reached (a database answers, a file's folder is there). GET /readyz asks
// it, at any time (concurrently with the Store's other methods); a Store
// without it is always reachable.
type Pinger interface {
	Ping(ctx context.Context) error
}

// pingTimeout bounds one Ping of GET /readyz.
const pingTimeout = 2 * time.Second

// handleHealthz serves GET /healthz: 200 while the process runs. It needs
// no token (load balancers' checks often cannot send one) and says nothing
// about the flags.
func (s *Server) handleHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("ok\n"))
}

// handleReadyz serves GET /readyz: 200 when the server has a snapshot to
// serve, is not shutting down and its store can be reached (Pinger), else
// 503 with the reason. It needs no token.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	reason := ""
	switch {
	case s.cur.Load() == nil:
		reason = "no snapshot loaded"
	case closing:
		reason = "shutting down"
	default:
		if p, ok := s.store.(Pinger); ok {
			ctx, cancel := context.WithTimeout(r.Context(), pingTimeout)
			defer cancel()
			if err := p.Ping(ctx); err != nil {
				reason = storeUnavailable // unauthenticated: the error is logged, not shown
				s.storeDown("/readyz", err)
			}
		}
	}
	if reason != "" {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = fmt.Fprintf(w, "not ready: %s\n", reason)
		return
	}
	w.WriteHeader(http.StatusOK)
	_, _ = fmt.Fprintf(w, "ready: version %d\n", s.cur.Load().version)
}

// Ping reports whether the store's file or folder, and the folder of its
// audit log, are there.
func (fs *FileStore) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := os.Stat(fs.path); err != nil {
		return fmt.Errorf("flags: %w", err)
	}
	if _, err := os.Stat(filepath.Dir(fs.auditPath)); err != nil {
		return fmt.Errorf("flags: audit log: %w", err)
	}
	return nil
}
