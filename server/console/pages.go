package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/flagstream/flags/experiment"
	"github.com/flagstream/flags/internal/eval"
	"github.com/flagstream/flags/rules"
	"github.com/flagstream/flags/server"
)

// flagRow is one line of the flag list.
type flagRow struct {
	Key, Description string
	Tags             []string
	On, Malformed    bool
	Version          int64
	Schedule         string // the schedule's progress, "" when none
	Guard            string // "armed", "tripped at …", ""
	Spark            []server.SummaryMinute
}

// page is what every page template gets.
type page struct {
	Title   string
	Session *session
	CanEdit bool // admin
	Flash   string
	Data    any
}

func (c *Console) page(s *session, title string, data any) page {
	c.mu.Lock()
	flash := s.flashText
	s.flashText = ""
	c.mu.Unlock()
	return page{Title: title, Session: s, CanEdit: s.role.AtLeast(server.RoleAdmin), Flash: flash, Data: data}
}

func (c *Console) flash(s *session, format string, args ...any) {
	c.mu.Lock()
	s.flashText = fmt.Sprintf(format, args...)
	c.mu.Unlock()
}

// flagList serves the flag list: search, tag filter, pages.
func (c *Console) flagList(w http.ResponseWriter, r *http.Request, s *session) {
	_, snap := c.snapshot()
	query := r.URL.Query()
	q := strings.ToLower(strings.TrimSpace(query.Get("q")))
	tag, segment, requires := query.Get("tag"), query.Get("segment"), query.Get("requires")
	now := c.now().UnixMilli()
	var matched []*eval.Flag
	tags := map[string]bool{}
	for _, f := range snap.Flags() {
		for _, t := range f.Tags {
			tags[t] = true
		}
		if q != "" && !strings.Contains(strings.ToLower(f.Key), q) && !strings.Contains(strings.ToLower(f.Description), q) {
			continue
		}
		if tag != "" && !slices.Contains(f.Tags, tag) {
			continue
		}
		if segment != "" && !usesSegment(f, segment) || requires != "" && !requiresFlag(f, requires) {
			continue
		}
		matched = append(matched, f)
	}
	filter := ""
	switch {
	case segment != "":
		filter = "Flags whose rules use the segment " + segment + "."
	case requires != "":
		filter = "Flags that require " + requires + "."
	}
	pageNo, from, to := pageBounds(r, len(matched))
	rows := make([]flagRow, 0, to-from)
	srv := c.srv.Load()
	for _, f := range matched[from:to] {
		row := flagRow{Key: f.Key, Description: clip(f.Description), Tags: f.Tags, On: f.On, Malformed: f.Err != nil, Version: f.Version,
			Schedule: scheduleProgress(f, now), Guard: guardState(f), Spark: srv.Summaries(f.Key)}
		rows = append(rows, row)
	}
	c.render(w, "list", http.StatusOK, c.page(s, "Flags", map[string]any{
		"Rows": rows, "Q": query.Get("q"), "Tag": tag, "Tags": sortedKeys(tags), "Filter": filter,
		"Total": len(matched), "Page": pageNo, "Pages": (len(matched) + PageSize - 1) / PageSize,
		"Prev": pageURL(r, pageNo-1), "Next": pageURL(r, pageNo+1), "HasNext": to < len(matched),
	}))
}

// pageBounds is the part [from, to) of n items that page pageNo (from 1;
// anything else is page 1) shows. A page number past the end shows nothing.
func pageBounds(r *http.Request, n int) (pageNo, from, to int) {
	pageNo, _ = strconv.Atoi(r.URL.Query().Get("page"))
	pageNo = max(pageNo, 1)
	if pageNo-1 > n/PageSize { // also keeps (pageNo-1)*PageSize from overflowing
		return pageNo, n, n
	}
	from = (pageNo - 1) * PageSize
	return pageNo, from, min(from+PageSize, n)
}

func pageURL(r *http.Request, n int) string {
	q := r.URL.Query()
	q.Set("page", strconv.Itoa(n))
	return "/ui/?" + q.Encode()
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// switchFlag turns a flag on or off: a PATCH of "on" with If-Match on the
// version the page showed.
func (c *Console) switchFlag(w http.ResponseWriter, r *http.Request, s *session) {
	key := pageKey(r)
	var on bool
	switch r.PostFormValue("on") {
	case "true":
		on = true
	case "false":
	default:
		http.Error(w, `console: "on" must be true or false`, http.StatusBadRequest)
		return
	}
	body, _ := json.Marshal(map[string]bool{"on": on})
	rec := c.api(r, s, http.MethodPatch, "/v1/admin/flags/"+apiKey(key), body,
		"Content-Type", "application/merge-patch+json", "If-Match", `"`+r.PostFormValue("version")+`"`,
		"X-Flags-Comment", "from the console")
	back := path.Clean(r.PostFormValue("back"))
	if !strings.HasPrefix(back, "/ui/") || strings.Contains(back, `\`) {
		// Cleaned first: "/ui/../\\evil" would leave the site.
		back = "/ui/"
	}
	switch rec.Code {
	case http.StatusOK:
		c.flash(s, "%s is now %s.", key, map[bool]string{true: "on", false: "off"}[on])
	case http.StatusPreconditionFailed:
		c.conflict(w, r, s, key, "switch it "+map[bool]string{true: "on", false: "off"}[on])
		return
	default:
		c.flash(s, "%s was not switched: %s", key, apiMessage(rec.Body.Bytes()))
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// editFlag replaces a flag's JSON (admins): a PUT with If-Match.
func (c *Console) editFlag(w http.ResponseWriter, r *http.Request, s *session) {
	key := pageKey(r)
	if !s.role.AtLeast(server.RoleAdmin) {
		http.Error(w, "console: only admins edit flags", http.StatusForbidden)
		return
	}
	edit := r.PostFormValue("json")
	rec := c.api(r, s, http.MethodPut, "/v1/admin/flags/"+apiKey(key), []byte(edit),
		"If-Match", `"`+r.PostFormValue("version")+`"`, "X-Flags-Comment", r.PostFormValue("comment"))
	switch rec.Code {
	case http.StatusOK:
		c.flash(s, "%s saved.", key)
		http.Redirect(w, r, flagURL(key), http.StatusSeeOther)
	case http.StatusPreconditionFailed:
		c.conflict(w, r, s, key, "save your edit")
	default:
		// The page again, with the edit still in the editor to be fixed.
		c.flash(s, "%s was not saved: %s", key, apiMessage(rec.Body.Bytes()))
		c.showFlag(w, r, s, key, rec.Code, &edit)
	}
}

// conflict shows that the page was stale: the flag changed since it was
// shown, and this is its newer value.
func (c *Console) conflict(w http.ResponseWriter, r *http.Request, s *session, key, what string) {
	rec := c.api(r, s, http.MethodGet, "/v1/admin/flags/"+apiKey(key), nil)
	current, etag := "", ""
	if rec.Code == http.StatusOK {
		current, etag = pretty(rec.Body.Bytes()), strings.Trim(rec.Header().Get("ETag"), `"`)
	}
	c.render(w, "conflict", http.StatusConflict, c.page(s, "Conflict", map[string]any{
		"Key": key, "What": what, "Current": current, "ETag": etag,
		"Shown": r.PostFormValue("version"), "Edit": r.PostFormValue("json"),
	}))
}

func apiMessage(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	return strings.TrimSpace(string(body))
}

func pretty(b []byte) string {
	var out bytes.Buffer
	if json.Indent(&out, b, "", "  ") != nil {
		return string(b)
	}
	return out.String()
}

// flagPage serves one flag: rules in words, rollouts, prerequisites and
// dependants, segments, the experiment, the history, and the editor.
func (c *Console) flagPage(w http.ResponseWriter, r *http.Request, s *session) {
	c.showFlag(w, r, s, pageKey(r), http.StatusOK, nil)
}

// showFlag renders flag key's page; edit, when set, is what the editor
// holds instead of the flag's JSON (an edit the server refused).
func (c *Console) showFlag(w http.ResponseWriter, r *http.Request, s *session, key string, status int, edit *string) {
	doc, snap := c.snapshot()
	f := snap.Flag(key)
	if f == nil {
		c.render(w, "notfound", http.StatusNotFound, c.page(s, "Not found", key))
		return
	}
	editor := pretty(doc.Flags[key])
	if edit != nil {
		editor = *edit
	}
	var rep *experiment.Report
	if rec := c.api(r, s, http.MethodGet, "/v1/admin/experiments/"+apiKey(key), nil); rec.Code == http.StatusOK {
		rep = &experiment.Report{}
		if json.Unmarshal(rec.Body.Bytes(), rep) != nil {
			rep = nil
		}
	}
	var audit server.AuditPage
	rec := c.api(r, s, http.MethodGet, "/v1/admin/audit?"+url.Values{"key": {key}, "kind": {string(server.KindFlag)}, "limit": {"1000"}}.Encode(), nil)
	historyErr := auditError(rec)
	if historyErr == "" {
		_ = json.Unmarshal(rec.Body.Bytes(), &audit)
	}
	slices.Reverse(audit.Entries) // newest first
	if len(audit.Entries) > 20 {
		audit.Entries = audit.Entries[:20]
	}
	c.render(w, "flag", status, c.page(s, key, map[string]any{
		"Flag": f, "Words": describeFlag(f), "JSON": editor, "Dependants": c.uses(snap).requiredBy[key],
		"Segments": segmentsUsed(f), "Rollouts": rolloutCharts(f, c.now().UnixMilli()), "Experiment": experimentView(rep),
		"History": historyView(audit.Entries), "HistoryError": historyErr, "Guard": guardState(f), "Spark": c.srv.Load().Summaries(key),
		"Missing": missingKeys(snap, f),
	}))
}

// missingKeys says which prerequisite flags and segments f names and the
// snapshot does not hold: valid (the prerequisite fails, the segment holds
// no context), but most often a misspelt key that the page's links would
// otherwise only show as "not found".
func missingKeys(snap *eval.Snapshot, f *eval.Flag) []string {
	var out []string
	for _, d := range snap.DanglingReferencesOf("flag", f.Key) {
		out = append(out, d.Field+": "+d.Message()+".")
	}
	return out
}

// segmentList serves the segments.
func (c *Console) segmentList(w http.ResponseWriter, r *http.Request, s *session) {
	doc, snap := c.snapshot()
	type row struct {
		Key                string
		Included, Excluded int
		Rules              []string
		UsedBy             refs
		Problem            string
	}
	used := c.uses(snap).usedBy
	var rows []row
	keys := sortedKeys(keysOf(doc.Segments))
	if one := r.URL.Query().Get("key"); one != "" { // a link to one segment
		keys = nil
		if _, ok := doc.Segments[one]; ok {
			keys = []string{one}
		}
	}
	pageNo, from, to := pageBounds(r, len(keys))
	for _, key := range keys[from:to] {
		var raw struct {
			Included, Excluded []any
			Rules              []struct {
				ID      string          `json:"id"`
				Clauses json.RawMessage `json:"clauses"`
				Weight  *int64          `json:"weight"`
			}
		}
		_ = json.Unmarshal(doc.Segments[key], &raw)
		rw := row{Key: key, Included: len(raw.Included), Excluded: len(raw.Excluded), UsedBy: used[key]}
		if g := snap.Segment(key); g != nil && g.Err != nil {
			rw.Problem = g.Err.Error()
		}
		for _, rr := range raw.Rules {
			var cl []rawClause
			_ = json.Unmarshal(rr.Clauses, &cl)
			text := clausesInWords(cl)
			if rr.Weight != nil {
				text += fmt.Sprintf(" (%s of them)", percent(*rr.Weight))
			}
			rw.Rules = append(rw.Rules, text)
		}
		rows = append(rows, rw)
	}
	c.render(w, "segments", http.StatusOK, c.page(s, "Segments", map[string]any{
		"Rows": rows, "Page": pageNo, "HasNext": to < len(keys), "Total": len(keys)}))
}

func keysOf(m map[string]json.RawMessage) map[string]bool {
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}

// auditPage serves the audit log, newest first, a page at a time.
func (c *Console) auditPage(w http.ResponseWriter, r *http.Request, s *session) {
	q := url.Values{"limit": {"1000"}}
	for _, name := range []string{"key", "kind"} { // kind: a flag and a segment may share a key
		if v := r.URL.Query().Get(name); v != "" {
			q.Set(name, v)
		}
	}
	var entries []server.AuditEntry
	status, readErr := http.StatusOK, ""
	for after := ""; ; {
		if after != "" {
			q.Set("after", after)
		}
		rec := c.api(r, s, http.MethodGet, "/v1/admin/audit?"+q.Encode(), nil)
		if readErr = auditError(rec); readErr != "" {
			status, entries = rec.Code, nil // a part of the log would read as all of it
			break
		}
		var p server.AuditPage
		if json.Unmarshal(rec.Body.Bytes(), &p) != nil {
			break
		}
		entries = append(entries, p.Entries...)
		if after = p.Next; after == "" || len(entries) > 100000 {
			break
		}
	}
	slices.Reverse(entries)
	pageNo, from, to := pageBounds(r, len(entries))
	c.render(w, "audit", status, c.page(s, "Audit log", map[string]any{
		"Entries": historyView(entries[from:to]), "Page": pageNo, "HasNext": to < len(entries), "Key": r.URL.Query().Get("key"),
		"Kind": r.URL.Query().Get("kind"), "Error": readErr,
	}))
}

// auditError is why the audit log could not be read (the store is
// unreachable, say), or "": shown instead of an empty log, which would
// read as "no change recorded" when changes are only out of reach.
func auditError(rec *httptest.ResponseRecorder) string {
	if rec.Code == http.StatusOK {
		return ""
	}
	return "The audit log cannot be read now (" + apiMessage(rec.Body.Bytes()) + "). Nothing is lost: reload once the store is back."
}

// listCap is how many flags a list of dependants or of a segment's users
// shows on a page; the rest are a link to the flag list, filtered. Ten
// thousand flags that use one segment would otherwise make every page that
// lists them megabytes long.
const listCap = 20

// refs is the start of a list of flag keys, and how many there are.
type refs struct {
	Keys []string // the first listCap
	N    int
}

// More is how many keys the list leaves out.
func (r refs) More() int { return r.N - len(r.Keys) }

func (r *refs) add(key string) {
	if len(r.Keys) < listCap {
		r.Keys = append(r.Keys, key)
	}
	r.N++
}

// usage is who uses what in one snapshot: the flags whose rules use each
// segment, and the flags that require each flag.
type usage struct {
	usedBy, requiredBy map[string]refs
}

// uses returns snap's usage, computed once per snapshot: the segments page
// and a flag's page would otherwise walk every flag at every view.
func (c *Console) uses(snap *eval.Snapshot) *usage {
	c.snapMu.Lock()
	defer c.snapMu.Unlock()
	if c.usage != nil && c.usageOf == snap {
		return c.usage
	}
	u := &usage{usedBy: map[string]refs{}, requiredBy: map[string]refs{}}
	for _, f := range snap.Flags() {
		for _, g := range segmentsUsed(f) {
			r := u.usedBy[g]
			r.add(f.Key)
			u.usedBy[g] = r
		}
		for _, p := range f.Prerequisites {
			r := u.requiredBy[p.Key]
			r.add(f.Key)
			u.requiredBy[p.Key] = r
		}
	}
	c.usage, c.usageOf = u, snap
	return u
}

// usesSegment reports whether a rule of f tests membership of segment.
func usesSegment(f *eval.Flag, segment string) bool {
	for _, r := range f.Rules {
		for _, c := range r.Clauses {
			if c.Op == rules.OpInSegment && slices.Contains(c.Values, any(segment)) {
				return true
			}
		}
	}
	return false
}

// requiresFlag reports whether key is one of f's prerequisites.
func requiresFlag(f *eval.Flag, key string) bool {
	return slices.ContainsFunc(f.Prerequisites, func(p eval.Prerequisite) bool { return p.Key == key })
}

// flagURL is the path of a flag's page. The key is escaped as one path
// segment: a key may hold a slash, a question mark or a hash. The keys "."
// and ".." are dot segments, which browsers remove from a path even
// escaped (%2E): they are written "~." and "~..", "~" being a character no
// key holds.
func flagURL(key string) string {
	if strings.Trim(key, ".") == "" {
		return "/ui/flags/~" + key
	}
	return "/ui/flags/" + url.PathEscape(key)
}

// pageKey is the key of the flag a /ui/flags/ path names (see flagURL).
func pageKey(r *http.Request) string {
	key := r.PathValue("key")
	if k, ok := strings.CutPrefix(key, "~"); ok && strings.Trim(k, ".") == "" {
		return k
	}
	return key
}

// apiKey escapes a key as a path segment of the API: the server's router
// would clean "." and ".." away, not "%2E".
func apiKey(key string) string {
	if strings.Trim(key, ".") == "" {
		return strings.ReplaceAll(key, ".", "%2E")
	}
	return url.PathEscape(key)
}

// clip shortens a text a list shows for each row to its first 200
// characters: a description can be any length, and a page lists 100.
func clip(s string) string {
	n := 0
	for i := range s {
		if n == 200 {
			return s[:i] + "…"
		}
		n++
	}
	return s
}
