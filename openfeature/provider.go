// Package openfeature is an OpenFeature provider for flagstream
// (github.com/open-feature/go-sdk): services that standardize on the
// OpenFeature API evaluate flagstream flags locally, in-process, with
// flagstream's speed, reasons and events.
//
//	client, _ := flags.New(flags.WithSource(stream.New(stream.Config{BaseURL: url, Token: token})))
//	openfeature.SetProviderWithContextAndWait(ctx, ofprovider.New(client))
//	of := openfeature.NewDefaultClient()
//	on, _ := of.BooleanValue(ctx, "new-checkout", false, openfeature.NewEvaluationContext("user-7", map[string]any{"country": "fr"}))
//
// It is a module of its own so that only programs using OpenFeature link
// the OpenFeature SDK.
package openfeature

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"strconv"
	"sync"
	"time"

	of "github.com/open-feature/go-sdk/openfeature"

	"github.com/flagstream/flags"
)

// Provider is an OpenFeature FeatureProvider, StateHandler, EventHandler
// and Tracker over a flags.Client.
type Provider struct {
	client *flags.Client
	wait   time.Duration

	events chan of.Event // EventChannel: unbuffered, fed by send's goroutine
	wake   chan struct{} // one slot: the queue changed
	done   chan struct{} // closed by Shutdown: send stops

	mu           sync.Mutex
	unregister   []func()
	listening    bool       // the client's listeners are registered, and send's goroutine started
	closed       bool       // Shutdown was called
	queue        []of.Event // events not yet handed to the SDK, in order, merged (push)
	sent         of.State   // OpenFeature's state once the events handed over and Init's results are applied
	inits        int        // Init calls under way: events wait until they have returned
	initReturned time.Time  // when the last Init returned: events wait initSettle after it
}

var (
	_ of.FeatureProvider          = (*Provider)(nil)
	_ of.ContextAwareStateHandler = (*Provider)(nil)
	_ of.EventHandler             = (*Provider)(nil)
	_ of.Tracker                  = (*Provider)(nil)
)

// Option configures a Provider.
type Option func(*Provider)

// WithInitTimeout bounds how long Init waits for the client's first
// snapshot when the SDK's context has no deadline (default 10 s): the SDK
// passes context.Background() from SetProvider, SetProviderAndWait and
// the other calls that take none. A provider that timed out reports READY
// once the client has flags.
func WithInitTimeout(d time.Duration) Option { return func(p *Provider) { p.wait = d } }

// New returns a Provider over client. The provider owns the client from
// then on: OpenFeature's Shutdown closes it.
func New(client *flags.Client, opts ...Option) *Provider {
	p := &Provider{client: client, wait: 10 * time.Second,
		events: make(chan of.Event), wake: make(chan struct{}, 1), done: make(chan struct{})}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Metadata names the provider.
func (p *Provider) Metadata() of.Metadata { return of.Metadata{Name: "flagstream"} }

// Hooks returns no provider hook: flagstream's own hooks (flags.WithHooks)
// run inside the client.
func (p *Provider) Hooks() []of.Hook { return nil }

// Init waits for the client's first snapshot (WithInitTimeout).
func (p *Provider) Init(ec of.EvaluationContext) error {
	ctx, cancel := context.WithTimeout(context.Background(), p.wait)
	defer cancel()
	return p.InitWithContext(ctx, ec)
}

// InitWithContext waits for the client's first snapshot, within ctx's
// deadline or else WithInitTimeout, then reports the client's health and
// changes as provider events. Its result is the client's state once the
// listeners are registered: nil when the client has flags (READY, and
// STALE follows at once when its source is failing or its flags come from
// a cache), a ProviderInitError of PROVIDER_FATAL when its source failed
// for good or it is closed, and the wait's error when it has no flags yet:
// the provider goes on listening, and READY follows once they come.
// Events wait until Init has returned (and initSettle more), so that
// OpenFeature applies Init's result first and the state they report after
// it.
func (p *Provider) InitWithContext(ctx context.Context, _ of.EvaluationContext) error {
	if _, ok := ctx.Deadline(); !ok {
		// Without it, a service whose flag server is down at start would
		// wait in SetProviderAndWait for as long as the outage lasts.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.wait)
		defer cancel()
	}
	p.mu.Lock()
	p.inits++
	p.mu.Unlock()
	waitErr := p.client.WaitReady(ctx)

	p.mu.Lock()
	defer p.wakeSender()
	defer p.mu.Unlock()
	p.inits--
	p.initReturned = time.Now()
	p.listenLocked()
	// A change of state from now on is the listeners' to report; the
	// state now is Init's.
	s := p.client.Status()
	var err error
	switch s.State {
	case flags.StateReady, flags.StateStale:
		p.sent = of.ReadyState // the SDK reports READY when Init returns nil
	case flags.StateFatal, flags.StateClosed:
		p.sent, err = of.FatalState, fatalError(s) // FATAL for PROVIDER_FATAL
	default: // no flags yet: the wait ended first
		p.sent = of.ErrorState // and ERROR for another error
		err = fmt.Errorf("flagstream: the client has no flags: %w", waitErr)
	}
	if ev, ok := statusEvent(s); ok {
		p.pushLocked(ev) // STALE, after Init's READY
	}
	return err
}

// listenLocked registers the client's listeners and starts send's
// goroutine, once: OpenFeature calls Init once per binding (a provider
// bound to two domains is initialized twice), and a second registration
// reported each change twice. p.mu is held.
func (p *Provider) listenLocked() {
	if p.listening || p.closed {
		return
	}
	p.listening = true
	p.unregister = []func(){p.client.OnStatus(p.onStatus), p.client.OnChange(p.onChange)}
	go p.send()
}

// fatalError is Init's error for a client whose source failed for good
// (a refused token) or that is closed (the provider was shut down):
// OpenFeature puts the provider in FATAL, and its evaluations answer
// PROVIDER_FATAL, for good.
func fatalError(s flags.Status) error {
	msg := "flagstream: the client's source failed for good"
	if s.State == flags.StateClosed {
		msg = "flagstream: the client is closed (the provider was shut down)"
	}
	if s.Err != nil {
		msg += ": " + s.Err.Error()
	}
	return &of.ProviderInitError{ErrorCode: of.ProviderFatalCode, Message: msg}
}

// Shutdown is ShutdownWithContext without a deadline: the client's events
// not yet sent get EventOptions.CloseTimeout.
func (p *Provider) Shutdown() { _ = p.ShutdownWithContext(context.Background()) }

// ShutdownWithContext stops reporting provider events (those not yet
// handed to the SDK are dropped) and closes the client within ctx
// (flags.Client.Shutdown): the client's exposures and track events not
// yet sent get until ctx ends or EventOptions.CloseTimeout has passed. It
// returns ctx's error when ctx ended before the client had closed.
func (p *Provider) ShutdownWithContext(ctx context.Context) error {
	p.mu.Lock()
	unregister := p.unregister
	p.unregister = nil
	if !p.closed {
		p.closed = true
		close(p.done)
	}
	p.queue = nil
	p.mu.Unlock()
	for _, u := range unregister {
		u()
	}
	return p.client.Shutdown(ctx)
}

// Track records a flagstream track event (a metric for experiments and
// guards) for the context's targeting key, with the details' value. Zero
// details (TrackingEventDetails{}: OpenFeature's only way to give no value)
// record the event without a value, which counts 1; details made with
// NewTrackingEventDetails carry their value, 0 included. The event needs
// only the key: attributes flagstream cannot take do not lose it. Without
// a targeting key nothing is recorded (flags.Client.Track).
func (p *Provider) Track(ctx context.Context, name string, ec of.EvaluationContext, d of.TrackingEventDetails) {
	fc, err := evalContext(ec.TargetingKey(), ec.Attributes())
	if err != nil {
		fc = flags.NewContext(ec.TargetingKey()).Build()
	}
	if !hasValue(d) {
		p.client.Track(ctx, name, fc)
		return
	}
	p.client.Track(ctx, name, fc, d.Value())
}

// hasValue reports whether tracking details carry a value: any but the
// zero TrackingEventDetails. go-sdk has no accessor that tells the zero
// details from NewTrackingEventDetails(0): only the zero value has no
// attribute map (NewTrackingEventDetails makes one, and Add needs it).
func hasValue(d of.TrackingEventDetails) bool {
	if d.Value() != 0 || len(d.Attributes()) > 0 {
		return true
	}
	attrs := reflect.ValueOf(d).FieldByName("attributes")
	return attrs.IsValid() && attrs.Kind() == reflect.Map && !attrs.IsNil()
}

// BooleanEvaluation evaluates a bool flag.
func (p *Provider) BooleanEvaluation(ctx context.Context, flag string, def bool, flat of.FlattenedContext) of.BoolResolutionDetail {
	return resolve(p, flat, def, func(fc flags.Context) flags.Result[bool] { return p.client.BoolDetail(ctx, flag, fc, def) })
}

// StringEvaluation evaluates a string flag.
func (p *Provider) StringEvaluation(ctx context.Context, flag string, def string, flat of.FlattenedContext) of.StringResolutionDetail {
	return resolve(p, flat, def, func(fc flags.Context) flags.Result[string] { return p.client.StringDetail(ctx, flag, fc, def) })
}

// FloatEvaluation evaluates a number flag.
func (p *Provider) FloatEvaluation(ctx context.Context, flag string, def float64, flat of.FlattenedContext) of.FloatResolutionDetail {
	return resolve(p, flat, def, func(fc flags.Context) flags.Result[float64] { return p.client.FloatDetail(ctx, flag, fc, def) })
}

// IntEvaluation evaluates a number flag whose values are integers.
func (p *Provider) IntEvaluation(ctx context.Context, flag string, def int64, flat of.FlattenedContext) of.IntResolutionDetail {
	return resolve(p, flat, def, func(fc flags.Context) flags.Result[int64] {
		r := p.client.IntDetail(ctx, flag, fc, int(def))
		return flags.Result[int64]{Flag: r.Flag, Value: int64(r.Value), Variation: r.Variation, Version: r.Version, Reason: r.Reason, Err: r.Err}
	})
}

// ObjectEvaluation evaluates a JSON (object or array) flag: the value is a
// map[string]any or []any of the caller's own, a deep copy of the flag's
// variation, which the caller may modify.
func (p *Provider) ObjectEvaluation(ctx context.Context, flag string, def any, flat of.FlattenedContext) of.InterfaceResolutionDetail {
	return resolve(p, flat, def, func(fc flags.Context) flags.Result[any] {
		// Through JSONDetail: a flag of another type serves def as
		// TYPE_MISMATCH and records no exposure (the caller never got the
		// variation), and decoding its JSON gives the caller maps and
		// slices of its own: a variation's are shared by every evaluation,
		// so a caller filling in defaults would change the flag for
		// everyone (and race with them).
		r := p.client.JSONDetail(ctx, flag, fc, nil)
		out := flags.Result[any]{Flag: r.Flag, Value: def, Variation: r.Variation, Version: r.Version, Reason: r.Reason, Err: r.Err}
		if r.Err == nil && r.Value != nil {
			var v any
			if err := json.Unmarshal(r.Value, &v); err != nil {
				out.Variation, out.Reason, out.Err = -1, flags.Reason{Kind: flags.ReasonError, ErrorKind: flags.ErrorMalformedFlag}, fmt.Errorf("%w: flag %q: %w", flags.ErrMalformedFlag, flag, err)
			} else {
				out.Value = v
			}
		}
		return out
	})
}

// resolve evaluates with eval for the flattened context, mapping the
// result to OpenFeature's. Every evaluation goes through the flags client,
// which answers in SPEC §3's order (no snapshot, flag not found, malformed
// flag, then an invalid context) and counts it and runs its hooks; a
// context invalid because it has no targeting key is then
// TARGETING_KEY_MISSING.
func resolve[T any](p *Provider, flat of.FlattenedContext, def T, eval func(flags.Context) flags.Result[T]) of.GenericResolutionDetail[T] {
	fc, keyed := flagsContext(flat)
	r := eval(fc)
	d := detail(r.Variation, r.Version, r.Reason, r.Err)
	if !keyed && errors.Is(r.Err, flags.ErrInvalidContext) {
		d.ResolutionError = of.NewTargetingKeyMissingResolutionError(
			"flagstream needs a targeting key (the context key: a user id, a device id): " + r.Err.Error())
	}
	return of.GenericResolutionDetail[T]{Value: r.Value, ProviderResolutionDetail: d}
}

// flagsContext turns OpenFeature's flattened context into a flagstream
// context: the targeting key becomes the context key, every other
// attribute is carried across as it is (nested maps included). Without a
// targeting key (keyed false) the context has no key, not even an
// attribute named "key", and evaluations of it are INVALID_CONTEXT; so is
// one with an attribute flagstream cannot take (Context.Err).
func flagsContext(flat of.FlattenedContext) (fc flags.Context, keyed bool) {
	key, _ := flat[of.TargetingKey].(string)
	attrs := maps.Clone(map[string]any(flat))
	delete(attrs, of.TargetingKey)
	if key == "" {
		delete(attrs, "key")
		return flags.ContextFromMap(attrs), false
	}
	fc, _ = evalContext(key, attrs)
	return fc, true
}

// evalContext builds a flagstream context from a key and attributes.
func evalContext(key string, attrs map[string]any) (flags.Context, error) {
	m := make(map[string]any, len(attrs)+1)
	maps.Copy(m, attrs)
	m["key"] = key
	fc := flags.ContextFromMap(m)
	return fc, fc.Err()
}

// detail maps a flagstream result to OpenFeature's: the variation index as
// the variant, reasons, error codes, and the flag's version, rule and
// prerequisite as flag metadata.
func detail(variation int, version int64, r flags.Reason, err error) of.ProviderResolutionDetail {
	d := of.ProviderResolutionDetail{FlagMetadata: of.FlagMetadata{"version": version}}
	if variation >= 0 {
		d.Variant = strconv.Itoa(variation)
		d.FlagMetadata["variation"] = variation
	}
	if r.RuleID != "" {
		d.FlagMetadata["ruleId"] = r.RuleID
	}
	if r.Kind == flags.ReasonRuleMatch {
		d.FlagMetadata["ruleIndex"] = r.RuleIndex
	}
	if r.PrerequisiteKey != "" {
		d.FlagMetadata["prerequisiteKey"] = r.PrerequisiteKey
	}
	d.FlagMetadata["flagstreamReason"] = string(r.Kind)
	if err != nil {
		d.Reason = of.ErrorReason
		d.ResolutionError = resolutionError(err)
		return d
	}
	switch {
	case r.InRollout:
		d.Reason = of.SplitReason
	case r.Kind == flags.ReasonOff || r.Kind == flags.ReasonPrerequisiteFailed:
		d.Reason = of.DisabledReason
	case r.Kind == flags.ReasonTargetMatch || r.Kind == flags.ReasonRuleMatch:
		d.Reason = of.TargetingMatchReason
	case r.Kind == flags.ReasonOverride:
		d.Reason = of.StaticReason
	default:
		d.Reason = of.DefaultReason
	}
	return d
}

// resolutionError maps flagstream's sentinel errors to OpenFeature's codes.
func resolutionError(err error) of.ResolutionError {
	msg := err.Error()
	switch {
	case errors.Is(err, flags.ErrFlagNotFound):
		return of.NewFlagNotFoundResolutionError(msg)
	case errors.Is(err, flags.ErrWrongType):
		return of.NewTypeMismatchResolutionError(msg)
	case errors.Is(err, flags.ErrMalformedFlag):
		return of.NewParseErrorResolutionError(msg)
	case errors.Is(err, flags.ErrClientNotReady):
		return of.NewProviderNotReadyResolutionError(msg)
	case errors.Is(err, flags.ErrInvalidContext):
		return of.NewInvalidContextResolutionError(msg)
	}
	return of.NewGeneralResolutionError(msg)
}
