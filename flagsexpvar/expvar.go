// Package flagsexpvar publishes a flags.Client's Metrics with the standard
// library's expvar (GET /debug/vars). It is a package of its own because
// importing expvar registers /debug/vars on http.DefaultServeMux, which
// the library itself must not do to the programs that import it.
package flagsexpvar

import (
	"expvar"

	"github.com/flagstream/flags"
)

// Publish publishes c's Metrics as the expvar variable name, computed at
// every read. It panics, as expvar.Publish does, when the name is taken.
func Publish(name string, c *flags.Client) {
	expvar.Publish(name, expvar.Func(func() any { return Map(c.Metrics()) }))
}

// Map is the JSON shape Publish gives m.
func Map(m flags.Metrics) map[string]any {
	out := map[string]any{
		"state": m.Status.State, "source": m.Status.Source, "version": m.Status.Version,
		"updatesApplied": m.UpdatesApplied, "sourceFailures": m.SourceFailures, "recoveries": m.Recoveries,
		"eventsDropped": m.EventsDropped, "flagsNotFound": m.FlagsNotFound, "evaluations": m.Evaluations,
	}
	if m.Status.Err != nil {
		out["error"] = m.Status.Err.Error()
	}
	return out
}
