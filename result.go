package flags

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
)

// ReasonKind says why an evaluation served what it served (SPEC §3).
type ReasonKind string

// The reason kinds.
const (
	ReasonOff                ReasonKind = "OFF"
	ReasonTargetMatch        ReasonKind = "TARGET_MATCH"
	ReasonRuleMatch          ReasonKind = "RULE_MATCH"
	ReasonPrerequisiteFailed ReasonKind = "PREREQUISITE_FAILED"
	ReasonFallthrough        ReasonKind = "FALLTHROUGH"
	ReasonError              ReasonKind = "ERROR"
)

// MarshalText implements encoding.TextMarshaler.
func (k ReasonKind) MarshalText() ([]byte, error) { return []byte(k), nil }

// ErrorKind says what went wrong when the reason is ReasonError.
type ErrorKind string

// The error kinds.
const (
	ErrorClientNotReady ErrorKind = "CLIENT_NOT_READY"
	ErrorFlagNotFound   ErrorKind = "FLAG_NOT_FOUND"
	ErrorMalformedFlag  ErrorKind = "MALFORMED_FLAG"
	ErrorInvalidContext ErrorKind = "INVALID_CONTEXT"
	ErrorWrongType      ErrorKind = "WRONG_TYPE"
)

// MarshalText implements encoding.TextMarshaler.
func (k ErrorKind) MarshalText() ([]byte, error) { return []byte(k), nil }

// Sentinel errors, one per error kind, for errors.Is on Result.Err.
// ErrInvalidContext is declared with Context.
var (
	ErrClientNotReady = errors.New("flags: client not ready")
	ErrFlagNotFound   = errors.New("flags: flag not found")
	ErrMalformedFlag  = errors.New("flags: malformed flag")
	ErrWrongType      = errors.New("flags: wrong type")
)

// Reason explains an evaluation result. Fields other than Kind are set only
// where they apply: RuleIndex and RuleID for RULE_MATCH, PrerequisiteKey for
// PREREQUISITE_FAILED, ErrorKind for ERROR, and the rollout flags when a
// rollout chose the variation.
type Reason struct {
	Kind            ReasonKind // why the value was served
	RuleIndex       int        // RULE_MATCH: the index of the rule that matched
	RuleID          string     // RULE_MATCH: that rule's id, "" when it has none
	PrerequisiteKey string     // PREREQUISITE_FAILED: the prerequisite that failed
	ErrorKind       ErrorKind  // ERROR: what went wrong
	InRollout       bool       // a percentage rollout chose the variation
	InExperiment    bool       // ... and the rollout is an experiment
	BucketFallback  bool       // ... and the bucketBy attribute was unusable: bucket 0 was used
}

// MarshalJSON encodes the reason with only the fields that apply, in the
// shape of SPEC §6.
func (r Reason) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"kind":`)
	b.WriteString(strconv.Quote(string(r.Kind)))
	if r.Kind == ReasonRuleMatch {
		b.WriteString(`,"ruleIndex":`)
		b.WriteString(strconv.Itoa(r.RuleIndex))
		if r.RuleID != "" {
			b.WriteString(`,"ruleId":`)
			writeJSONString(&b, r.RuleID)
		}
	}
	if r.PrerequisiteKey != "" {
		b.WriteString(`,"prerequisiteKey":`)
		writeJSONString(&b, r.PrerequisiteKey)
	}
	if r.ErrorKind != "" {
		b.WriteString(`,"errorKind":`)
		b.WriteString(strconv.Quote(string(r.ErrorKind)))
	}
	if r.InRollout {
		b.WriteString(`,"inRollout":true`)
	}
	if r.InExperiment {
		b.WriteString(`,"inExperiment":true`)
	}
	if r.BucketFallback {
		b.WriteString(`,"bucketFallback":true`)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// Result is the detailed outcome of one evaluation.
type Result[T any] struct {
	Flag      string // the flag key asked for
	Value     T      // the value served (the caller's default on error, or when no variation applies)
	Variation int    // index of the variation served; -1 when the default was served
	Version   int64  // the flag's version; 0 when there is no such flag
	Reason    Reason // why Value was served
	// Err is nil unless Reason.Kind is ERROR; it wraps one of the sentinel
	// errors (ErrFlagNotFound, ErrMalformedFlag...) with details.
	Err error
}

// MarshalJSON encodes the result in the shape `flags eval` prints:
// {"flag":..,"value":..,"variation":..,"version":..,"reason":{..}}, with
// variation absent when the default was served and version absent when the
// flag does not exist.
func (r Result[T]) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"flag":`)
	writeJSONString(&b, r.Flag)
	b.WriteString(`,"value":`)
	v, err := json.Marshal(r.Value)
	if err != nil {
		return nil, err
	}
	b.Write(v)
	if r.Variation >= 0 {
		b.WriteString(`,"variation":`)
		b.WriteString(strconv.Itoa(r.Variation))
	}
	if r.Reason.ErrorKind != ErrorFlagNotFound && r.Reason.ErrorKind != ErrorClientNotReady {
		b.WriteString(`,"version":`)
		b.WriteString(strconv.FormatInt(r.Version, 10))
	}
	b.WriteString(`,"reason":`)
	rb, _ := r.Reason.MarshalJSON()
	b.Write(rb)
	b.WriteByte('}')
	return b.Bytes(), nil
}

func writeJSONString(b *bytes.Buffer, s string) {
	enc, _ := json.Marshal(s)
	b.Write(enc)
}
