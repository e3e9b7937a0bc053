// Package console is the web console of `flags serve` (SPEC §11): a few
// server-rendered pages (html/template, a little plain JavaScript, all
// embedded: no build step, no CDN) for the people who change flags. It
// signs people in with their token once, keeps a server-side session in an
// HttpOnly, SameSite=Strict cookie (Secure under TLS) and checks a CSRF
// token on every change.
//
// Every read and write goes through the server's own HTTP API with the
// signed-in token (GET /v1/admin/..., PATCH with If-Match...), so the
// console has exactly the rights of that token, its edits are audited under
// its name, and a stale page cannot overwrite a newer version: the API
// answers 412 and the console shows the newer value.
package console

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flagstream/flags/internal/eval"
	"github.com/flagstream/flags/rules"
	"github.com/flagstream/flags/server"
)

// Session lifetimes.
const (
	// IdleTimeout ends a session nobody used for this long.
	IdleTimeout = 8 * time.Hour
	// MaxAge ends any session this long after sign-in.
	MaxAge = 24 * time.Hour
	// MaxSessionsPerToken is the most sessions one token holds at once:
	// signing in once more ends its oldest. Without it, whoever holds a
	// token could sign in again and again and grow the server's memory
	// (and the cost of every sign-in, which sweeps the sessions) without
	// bound.
	MaxSessionsPerToken = 32
	// cookieName is the session cookie.
	cookieName = "flags_console"
	// loginCookie holds the sign-in form's CSRF token (see loginPage).
	loginCookie = "flags_login"
	// PageSize is how many flags, segments or audit entries a page lists.
	PageSize = 100
)

//go:embed assets
var assets embed.FS

// Console is the /ui/ handler. Make it with New, give it to
// server.Options.Console, and Attach the server once it exists.
type Console struct {
	srv  atomic.Pointer[server.Server]
	log  *slog.Logger
	tmpl *template.Template
	mux  *http.ServeMux
	now  func() time.Time

	mu       sync.Mutex
	sessions map[string]*session

	snapMu  sync.Mutex
	snapDoc *rules.Document // the document snap was compiled from
	snap    *eval.Snapshot
	usage   *usage         // see uses
	usageOf *eval.Snapshot // the snapshot usage describes
}

// session is one signed-in person.
type session struct {
	id, csrf  string
	name      string      // the token's name: the audit's actor
	role      server.Role // operator or admin
	token     string      // sent with the API requests made for them
	created   time.Time
	lastSeen  time.Time
	flashText string // a message for the next page
}

// Options configure a Console.
type Options struct {
	Logger *slog.Logger     // slog.Default() when nil
	Now    func() time.Time // time.Now when nil (tests)
}

// New returns a Console; Attach the server before serving.
func New(o Options) *Console {
	c := &Console{log: o.Logger, now: o.Now, sessions: map[string]*session{}}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.tmpl = template.Must(template.New("").Funcs(funcs).ParseFS(assets, "assets/*.html"))
	c.mux = http.NewServeMux()
	c.routes()
	return c
}

// Attach sets the server the console shows and changes.
func (c *Console) Attach(s *server.Server) { c.srv.Store(s) }

// ServeHTTP serves /ui/.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; form-action 'self'; frame-ancestors 'none'")
	if c.srv.Load() == nil {
		http.Error(w, "console: no server attached", http.StatusServiceUnavailable)
		return
	}
	c.mux.ServeHTTP(w, r)
}

func (c *Console) routes() {
	// The style sheet and the script, and nothing else of assets (no
	// listing, no templates).
	for _, name := range []string{"console.css", "console.js"} {
		c.mux.HandleFunc("GET /ui/static/"+name, func(w http.ResponseWriter, r *http.Request) {
			http.ServeFileFS(w, r, assets, "assets/"+name)
		})
	}
	c.mux.HandleFunc("GET /ui/login", c.loginPage)
	c.mux.HandleFunc("POST /ui/login", c.login)
	c.mux.HandleFunc("POST /ui/logout", c.withSession(c.logout))
	c.mux.HandleFunc("GET /ui/{$}", c.withSession(c.flagList))
	c.mux.HandleFunc("GET /ui/flags/{key}", c.withSession(c.flagPage))
	c.mux.HandleFunc("POST /ui/flags/{key}/switch", c.withSession(c.switchFlag))
	c.mux.HandleFunc("POST /ui/flags/{key}/edit", c.withSession(c.editFlag))
	c.mux.HandleFunc("GET /ui/segments", c.withSession(c.segmentList))
	c.mux.HandleFunc("GET /ui/audit", c.withSession(c.auditPage))
}

// withSession runs h for a signed-in person, checking the CSRF token of
// every POST; without a session it sends them to sign in.
func (c *Console) withSession(h func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && crossSite(r) {
			http.Error(w, "console: a change must come from the console's own pages", http.StatusForbidden)
			return
		}
		s := c.session(r)
		if s == nil {
			if len(r.CookiesNamed(cookieName)) > 1 {
				expirePlanted(w, r)
			}
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
				return
			}
			http.Error(w, "console: not signed in", http.StatusUnauthorized)
			return
		}
		server.LogActor(w, s.name)
		if r.Method == http.MethodPost {
			r.Body = limitBody(w, r, 2<<20)
			if subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(s.csrf)) != 1 {
				http.Error(w, "console: missing or wrong CSRF token: reload the page", http.StatusForbidden)
				return
			}
		}
		h(w, r, s)
	}
}

// expirePlanted expires the session cookie at every path a planted one
// could have been set for on the way to r's path (/ui/, /ui/flags,
// /ui/flags/, ...): a second cookie set from another port of this host,
// with a longer path, would otherwise send the person to sign in again
// from every page under it, for as long as the planter chose. (One set for
// a parent domain cannot be expired from here: it has another Domain.)
func expirePlanted(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	for i := len("/ui/"); i <= len(p); i++ {
		if i == len(p) || p[i] == '/' {
			setCookie(w, r, cookieName, "", p[:i], 0)
			if i < len(p) {
				setCookie(w, r, cookieName, "", p[:i+1], 0)
			}
		}
	}
	setCookie(w, r, cookieName, "", "/ui/", 0)
}

// crossSite reports a request a browser says another site started
// (Sec-Fetch-Site): a form on another site posting here. The CSRF tokens
// refuse it as well; this refuses it before anything is read.
func crossSite(r *http.Request) bool {
	site := r.Header.Get("Sec-Fetch-Site")
	return site == "cross-site" || site == "same-site"
}

// setCookie sets one of the console's cookies: HttpOnly, SameSite=Strict,
// Secure when the browser came over TLS, for maxAge (0: removed now).
func setCookie(w http.ResponseWriter, r *http.Request, name, value, path string, maxAge time.Duration) {
	c := &http.Cookie{Name: name, Value: value, Path: path, HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: secure(r), MaxAge: int(maxAge.Seconds())}
	if maxAge == 0 {
		c.MaxAge = -1
	}
	http.SetCookie(w, c)
}

// secure reports whether the browser reached the console over TLS, here or
// at a proxy in front that says so: its cookies are then Secure.
func secure(r *http.Request) bool {
	return r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https"
}

// session returns the live session of r's cookie, or nil. The session's
// token is looked up again each time, so that a tokens file that removes it
// ends the session, and one that changes its role changes what the pages
// show (an operator demoted from admin no longer sees the editor).
func (c *Console) session(r *http.Request) *session {
	cks := r.CookiesNamed(cookieName)
	if len(cks) != 1 {
		// Two session cookies: one was planted by a page of another port
		// of this host or of a sibling domain (a cookie with a longer path
		// comes first), to act under the planter's session. Neither is
		// trusted; the person signs in again.
		return nil
	}
	ck := cks[0]
	c.mu.Lock()
	s := c.sessions[ck.Value]
	c.mu.Unlock()
	if s == nil {
		return nil
	}
	name, role, ok := c.srv.Load().TokenRole(s.token)
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if !ok || !role.AtLeast(server.RoleOperator) || now.Sub(s.lastSeen) > IdleTimeout || now.Sub(s.created) > MaxAge {
		delete(c.sessions, s.id)
		return nil
	}
	s.name, s.role, s.lastSeen = name, role, now
	return s
}

// loginPage serves the sign-in form. Signing in is a change too (it
// replaces the browser's session), so the form carries a CSRF token, the
// same as a cookie only this site's pages send back: a form on another
// site that posts a token of its own here is refused.
func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.renderLogin(w, r, http.StatusOK, "")
}

func (c *Console) renderLogin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	token := randomHex(32)
	setCookie(w, r, loginCookie, token, "/ui/login", time.Hour)
	c.render(w, "login", status, map[string]any{"Error": msg, "CSRF": token})
}

// formReadTimeout bounds the reading of a form's body: a client sending
// it a byte at a time is cut off (SPEC §13).
const formReadTimeout = 10 * time.Second

// limitBody bounds a form's body to limit bytes read within
// formReadTimeout.
func limitBody(w http.ResponseWriter, r *http.Request, limit int64) io.ReadCloser {
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(formReadTimeout))
	return http.MaxBytesReader(w, r.Body, limit)
}

// login signs a person in with their token: operators and admins only.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = limitBody(w, r, 16<<10)
	ck, err := r.Cookie(loginCookie)
	if crossSite(r) || err != nil || subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(ck.Value)) != 1 {
		c.renderLogin(w, r, http.StatusForbidden, "The sign-in form had expired or came from another site. Sign in here.")
		return
	}
	token := strings.TrimSpace(r.PostFormValue("token")) // as the API trims a bearer token
	name, role, ok := c.srv.Load().TokenRole(token)
	switch {
	case !ok || token == "":
		c.renderLogin(w, r, http.StatusUnauthorized, "This token is not known to the server.")
		return
	case !role.AtLeast(server.RoleOperator):
		c.renderLogin(w, r, http.StatusForbidden, "The console is for operator and admin tokens; this one may only read flags.")
		return
	}
	now := c.now()
	s := &session{id: randomHex(32), csrf: randomHex(32), name: name, role: role, token: token, created: now, lastSeen: now}
	c.mu.Lock()
	if old, err := r.Cookie(cookieName); err == nil { // signing in again ends the session it replaces
		delete(c.sessions, old.Value)
	}
	var oldest *session // the token's oldest session
	held := 0
	for id, old := range c.sessions { // forget expired sessions now and then
		if now.Sub(old.lastSeen) > IdleTimeout || now.Sub(old.created) > MaxAge {
			delete(c.sessions, id)
			continue
		}
		if old.name == name {
			held++
			if oldest == nil || old.created.Before(oldest.created) {
				oldest = old
			}
		}
	}
	if held >= MaxSessionsPerToken {
		delete(c.sessions, oldest.id)
	}
	c.sessions[s.id] = s
	c.mu.Unlock()
	setCookie(w, r, cookieName, s.id, "/ui/", MaxAge)
	setCookie(w, r, loginCookie, "", "/ui/login", 0)
	server.LogActor(w, name)
	c.log.Info("console: signed in", "actor", name, "role", role)
	http.Redirect(w, r, "/ui/", http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, s *session) {
	c.mu.Lock()
	delete(c.sessions, s.id)
	c.mu.Unlock()
	setCookie(w, r, cookieName, "", "/ui/", 0)
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

// api calls the server's HTTP API as the signed-in person.
func (c *Console) api(r *http.Request, s *session, method, path string, body []byte, header ...string) *httptest.ResponseRecorder {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req := httptest.NewRequestWithContext(r.Context(), method, path, rd)
	req.RemoteAddr = r.RemoteAddr // the access log names the person's address, not httptest's
	req.Header.Set("Authorization", "Bearer "+s.token)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	c.srv.Load().ServeHTTP(rec, req)
	return rec
}

// snapshot compiles the served document once per version.
func (c *Console) snapshot() (*rules.Document, *eval.Snapshot) {
	doc := c.srv.Load().Document()
	c.snapMu.Lock()
	defer c.snapMu.Unlock()
	if c.snapDoc != doc {
		c.snap = eval.Compile(doc)
		c.snapDoc = doc
	}
	return doc, c.snap
}

func (c *Console) render(w http.ResponseWriter, page string, status int, data any) {
	var b bytes.Buffer
	if err := c.tmpl.ExecuteTemplate(&b, page, data); err != nil {
		c.log.Error("console: rendering", "page", page, "err", err)
		http.Error(w, "console: rendering failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Name is the signed-in token's name (for the templates).
func (s *session) Name() string { return s.name }

// Role is the signed-in token's role.
func (s *session) Role() server.Role { return s.role }

// CSRF is the session's CSRF token, in every form.
func (s *session) CSRF() string { return s.csrf }
