package rules_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/flagstream/flags/rules"
)

func TestValidateNamesTheFlagAndField(t *testing.T) {
	doc, err := rules.ParseDocument([]byte(`{"flags":{
		"ok":  {"on":true,"variations":[false,true],"fallthrough":{"variation":1}},
		"bad": {"on":true,"variations":[false,true],"fallthrough":{"variation":1},
		        "rules":[{"clauses":[{"attribute":"v","op":"semVerEqual","values":["1.2"]},
		                             {"attribute":"c","op":"nope","values":[1]}],"serve":{"variation":0}}]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	probs := rules.Validate(doc)
	if len(probs) != 1 {
		t.Fatalf("Validate = %v, want one problem", probs)
	}
	p := probs[0]
	if p.Kind != "flag" || p.Key != "bad" || p.Field != "rules[0].clauses[1].op" {
		t.Errorf("problem at %s %q %q, want flag bad rules[0].clauses[1].op", p.Kind, p.Key, p.Field)
	}
	if !errors.Is(p, rules.ErrMalformed) {
		t.Errorf("errors.Is(%v, ErrMalformed) = false", p)
	}
}

func TestValidateWellFormed(t *testing.T) {
	doc, err := rules.ParseDocument([]byte(`{"flags":{"ok":{"on":false,"variations":["a","b"],"offVariation":0,"fallthrough":{"variation":1}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if probs := rules.Validate(doc); probs != nil {
		t.Errorf("Validate = %v, want nil", probs)
	}
}

func TestParseDocumentRefusals(t *testing.T) {
	deep := make([]byte, 0, 2*rules.MaxNesting+40)
	deep = append(deep, `{"flags":{"x":`...)
	for range rules.MaxNesting {
		deep = append(deep, '[')
	}
	for range rules.MaxNesting {
		deep = append(deep, ']')
	}
	deep = append(deep, "}}"...)
	for _, tc := range []struct {
		name string
		data string
		want error
	}{
		{"not JSON", `{"flags":`, rules.ErrInvalidDocument},
		{"wrong shape", `{"flags":[]}`, rules.ErrInvalidDocument},
		{"too deep", string(deep), rules.ErrTooDeep},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := rules.ParseDocument([]byte(tc.data))
			if !errors.Is(err, tc.want) {
				t.Errorf("ParseDocument: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestPatchApply(t *testing.T) {
	doc, err := rules.ParseDocument([]byte(`{"version":1,"flags":{"a":{"on":false,"variations":[1,2],"offVariation":0},"b":{"on":false,"variations":[1,2],"offVariation":1}}}`))
	if err != nil {
		t.Fatal(err)
	}
	p, err := rules.ParsePatch([]byte(`{"version":2,"flags":{"a":null,"c":{"on":false,"variations":[3],"offVariation":0}}}`))
	if err != nil {
		t.Fatal(err)
	}
	next := doc.Apply(p)
	if next.Version != 2 || next.Flags["a"] != nil || next.Flags["b"] == nil || next.Flags["c"] == nil {
		t.Errorf("Apply = version %d, flags %v", next.Version, next.Flags)
	}
	if doc.Version != 1 || doc.Flags["a"] == nil {
		t.Error("Apply modified the document it was called on")
	}
}

func TestValidKey(t *testing.T) {
	long := make([]byte, rules.MaxKeyLength+1)
	for i := range long {
		long[i] = 'k'
	}
	for key, want := range map[string]bool{
		"new-checkout": true, "a.b_c-9": true, string(long[:rules.MaxKeyLength]): true,
		"": false, "has space": false, "ü": false, string(long): false,
	} {
		if got := rules.ValidKey(key); got != want {
			t.Errorf("ValidKey(%.20q) = %v, want %v", key, got, want)
		}
	}
}

func ExampleValidate() {
	doc, _ := rules.ParseDocument([]byte(`{"flags":{"checkout":{"on":true,"variations":[false,true],
	  "fallthrough":{"variation":1},
	  "rules":[{"clauses":[{"attribute":"app","op":"semverGreaterThan","values":["2.0.0"]}],"serve":{"variation":0}}]}}}`))
	for _, p := range rules.Validate(doc) {
		fmt.Println(p)
	}
	// Output:
	// flags.checkout.rules[0].clauses[0].op: unknown operator "semverGreaterThan"
}
