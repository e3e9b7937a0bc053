package server

import (
	"bytes"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flagstream/flags/rules"
)

func TestSpliceChange(t *testing.T) {
	const v = `{"version":2,"on":true}`
	set := func(kind Kind, key string) Change {
		return Change{Kind: kind, Key: key, Value: []byte(v)}
	}
	del := func(kind Kind, key string) Change { return Change{Kind: kind, Key: key} }
	for _, tc := range []struct {
		name string
		data string
		c    Change
		want string
	}{
		{"replace indented", "{\n  \"flags\": {\n    \"a\": {\n      \"on\": false\n    },\n    \"b\": 1\n  }\n}\n", set(KindFlag, "a"),
			"{\n  \"flags\": {\n    \"a\": {\n      \"version\": 2,\n      \"on\": true\n    },\n    \"b\": 1\n  }\n}\n"},
		{"replace with tabs", "{\n\t\"flags\": {\n\t\t\"a\": {\n\t\t\t\"on\": false\n\t\t}\n\t}\n}", set(KindFlag, "a"),
			"{\n\t\"flags\": {\n\t\t\"a\": {\n\t\t\t\"version\": 2,\n\t\t\t\"on\": true\n\t\t}\n\t}\n}"},
		{"replace one line spaced", `{"flags": {"a": {"on": false}, "b": {}}}`, set(KindFlag, "a"),
			`{"flags": {"a": {"version": 2, "on": true}, "b": {}}}`},
		{"replace compact", `{"flags":{"a":{"on":false}}}`, set(KindFlag, "a"), `{"flags":{"a":{"version":2,"on":true}}}`},
		{"replace the last duplicate", `{"flags":{"a":1,"a":2}}`, set(KindFlag, "a"), `{"flags":{"a":1,"a":{"version":2,"on":true}}}`},
		{"append after the last", "{\n  \"flags\": {\n    \"a\": {\n      \"on\": false\n    }\n  }\n}", set(KindFlag, "n"),
			"{\n  \"flags\": {\n    \"a\": {\n      \"on\": false\n    },\n    \"n\": {\n      \"version\": 2,\n      \"on\": true\n    }\n  }\n}"},
		{"append like the last object", `{"flags": {"a": {"on": false}, "m": 5}}`, set(KindFlag, "n"),
			`{"flags": {"a": {"on": false}, "m": 5, "n": {"version": 2, "on": true}}}`},
		{"append to an empty object", "{\n  \"flags\": {},\n  \"segments\": {}\n}", set(KindSegment, "s"),
			"{\n  \"flags\": {},\n  \"segments\": {\n    \"s\": {\n      \"version\": 2,\n      \"on\": true\n    }\n  }\n}"},
		{"append to an empty object on one line", `{"flags":{ }}`, set(KindFlag, "n"), `{"flags":{"n":{"version":2,"on":true}}}`},
		{"section missing", "{\n  \"version\": 4\n}\n", set(KindSegment, "s"),
			"{\n  \"version\": 4,\n  \"segments\": {\n    \"s\": {\n      \"version\": 2,\n      \"on\": true\n    }\n  }\n}\n"},
		{"section missing on one line", `{"version":4}`, set(KindFlag, "n"), `{"version":4,"flags":{"n":{"version":2,"on":true}}}`},
		{"section null", "{\n  \"flags\": null\n}", set(KindFlag, "n"),
			"{\n  \"flags\": {\n    \"n\": {\n      \"version\": 2,\n      \"on\": true\n    }\n  }\n}"},
		{"empty top level", `{}`, set(KindFlag, "n"),
			"{\n  \"flags\": {\n    \"n\": {\n      \"version\": 2,\n      \"on\": true\n    }\n  }\n}"},
		{"new file", ``, set(KindFlag, "n"),
			"{\n  \"flags\": {\n    \"n\": {\n      \"version\": 2,\n      \"on\": true\n    }\n  }\n}\n"},
		{"CRLF", "{\r\n  \"flags\": {\r\n    \"a\": {\r\n      \"on\": false\r\n    }\r\n  }\r\n}\r\n", set(KindFlag, "n"),
			"{\r\n  \"flags\": {\r\n    \"a\": {\r\n      \"on\": false\r\n    },\r\n    \"n\": {\r\n      \"version\": 2,\r\n      \"on\": true\r\n    }\r\n  }\r\n}\r\n"},
		{"key with an escape", `{"flags":{"\u0061":{"on":false}}}`, set(KindFlag, "a"), `{"flags":{"\u0061":{"version":2,"on":true}}}`},
		{"only scalars changed: the layout kept", "{\n  \"flags\": {\n    \"a\": {\n      \"version\": 1,\n      \"on\": false,\n      \"variations\": [false, true],\n      \"fallthrough\": { \"variation\": 1 }\n    }\n  }\n}",
			Change{Kind: KindFlag, Key: "a", Value: []byte(`{"version":2,"on":true,"variations":[false,true],"fallthrough":{"variation":1}}`)},
			"{\n  \"flags\": {\n    \"a\": {\n      \"version\": 2,\n      \"on\": true,\n      \"variations\": [false, true],\n      \"fallthrough\": { \"variation\": 1 }\n    }\n  }\n}"},
		{"an array changed: laid out again", "{\n  \"flags\": {\n    \"a\": {\n      \"on\": false,\n      \"variations\": [false, true]\n    }\n  }\n}",
			Change{Kind: KindFlag, Key: "a", Value: []byte(`{"on":false,"variations":[true,false]}`)},
			"{\n  \"flags\": {\n    \"a\": {\n      \"on\": false,\n      \"variations\": [\n        true,\n        false\n      ]\n    }\n  }\n}"},
		{"delete the first", "{\n  \"flags\": {\n    \"a\": 1,\n    \"b\": 2\n  }\n}", del(KindFlag, "a"), "{\n  \"flags\": {\n    \"b\": 2\n  }\n}"},
		{"delete the last", "{\n  \"flags\": {\n    \"a\": 1,\n    \"b\": 2\n  }\n}", del(KindFlag, "b"), "{\n  \"flags\": {\n    \"a\": 1\n  }\n}"},
		{"delete the middle", `{"flags": {"a": 1, "b": 2, "c": 3}}`, del(KindFlag, "b"), `{"flags": {"a": 1, "c": 3}}`},
		{"delete the only", "{\n  \"flags\": {\n    \"a\": 1\n  },\n  \"x\": 0\n}", del(KindFlag, "a"), "{\n  \"flags\": {},\n  \"x\": 0\n}"},
		{"delete every duplicate", `{"flags":{"a":1,"b":2,"a":3}}`, del(KindFlag, "a"), `{"flags":{"b":2}}`},
		{"delete in the last section", `{"flags":{"a":1},"flags":{"a":2,"b":3}}`, del(KindFlag, "a"), `{"flags":{"a":1},"flags":{"b":3}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, changed, err := spliceChange([]byte(tc.data), tc.c, 1000)
			if err != nil || !changed {
				t.Fatalf("spliceChange = %v, %v", changed, err)
			}
			if string(out) != tc.want {
				t.Errorf("spliceChange(%q) =\n%s\nwant\n%s", tc.data, out, tc.want)
			}
			// A document that parses still does (one naming a key twice
			// does not: the splice leaves the earlier one).
			if _, err := rules.ParseDocument([]byte(tc.data)); err == nil {
				if _, err := rules.ParseDocument(out); err != nil {
					t.Errorf("result does not parse: %v", err)
				}
			}
		})
	}
	for _, tc := range []struct{ name, data string }{
		{"delete missing key", `{"flags":{"a":1}}`},
		{"delete in missing section", `{"version":1}`},
		{"delete in null section", `{"flags":null}`},
		{"delete in a new file", ``},
	} {
		out, changed, err := spliceChange([]byte(tc.data), del(KindFlag, "zz"), 1000)
		if err != nil || changed || string(out) != tc.data {
			t.Errorf("%s: spliceChange = %q, %v, %v; want the file unchanged", tc.name, out, changed, err)
		}
	}
	for _, bad := range []string{`[1]`, `{"flags":[]}`, `{"flags":{"a":1}`, `{"flags":{"a":1}} x`, `{"flags":{"a" 1}}`} {
		if _, _, err := spliceChange([]byte(bad), set(KindFlag, "a"), 1000); err == nil {
			t.Errorf("spliceChange(%q) = nil error", bad)
		}
	}
}

// A value that indentation would more than double is written on one line:
// the file never grows by more than the budget because of the layout.
func TestSpliceBudget(t *testing.T) {
	deep := strings.Repeat("[", 40) + strings.Repeat("]", 40)
	value := []byte(`{"version":1,"variations":[` + deep + `]}`)
	data := "{\n  \"flags\": {\n    \"a\": {\n      \"on\": false\n    }\n  }\n}\n"
	out, _, err := spliceChange([]byte(data), Change{Kind: KindFlag, Key: "a", Value: value}, 2*len(value))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, value) {
		t.Errorf("deep value not written compact:\n%s", out)
	}
	if grown := len(out) - len(data); grown > 2*len(value) {
		t.Errorf("file grew by %d bytes for a %d-byte value", grown, len(value))
	}
}

// withVersion keeps the members where they are.
func TestWithVersionKeepsOrder(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
	}{
		{`{"on": true, "version": 3, "x": [1, 2]}`, `{"on":true,"version":9,"x":[1,2]}`},
		{`{"on": true}`, `{"version":9,"on":true}`},
		{`{}`, `{"version":9}`},
		{`{"version": 1, "a": 0, "version": 2}`, `{"version":9,"a":0,"version":9}`},
		{`[1, 2]`, `[1,2]`},
	} {
		if got := string(withVersion([]byte(tc.in), 9)); got != tc.want {
			t.Errorf("withVersion(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// Whatever the document's layout, the edit in place changes the written key
// and nothing else (checkEdit compares every other member byte for byte).
func FuzzSpliceChange(f *testing.F) {
	for _, seed := range []string{
		baseDoc,
		`{"flags":{"a":{"on":true},"b":{}},"segments":{"s":{}}}`,
		`{}`,
		`{"version": 3, "x": [1, {"flags": 2}], "flags": null}`,
		"{\r\n\t\"flags\" :\t{ \"k\" : 1 , \"k\" : [ ] } }",
	} {
		f.Add([]byte(seed), "new-checkout", false, true)
		f.Add([]byte(seed), "k", true, false)
	}
	f.Fuzz(func(t *testing.T, data []byte, key string, segment, del bool) {
		if !rules.ValidKey(key) {
			return
		}
		before, err := rules.ParseDocument(data)
		if err != nil {
			return
		}
		c := Change{Kind: KindFlag, Key: key}
		if segment {
			c.Kind = KindSegment
		}
		if !del {
			c.Value = []byte(`{"version":7,"on":true,"variations":[1,[2,{"a":"b,c:d"}]]}`)
		}
		out, changed, err := spliceChange(data, c, 1<<20)
		if err != nil {
			t.Fatalf("spliceChange(%q) = %v", data, err)
		}
		if !changed {
			m := before.Flags
			if segment {
				m = before.Segments
			}
			if _, had := m[key]; had || !del {
				t.Fatalf("spliceChange(%q) changed nothing", data)
			}
			return
		}
		f := &sourceFile{good: before}
		if _, err := checkEdit(f, out, []Change{c}); err != nil {
			t.Fatalf("spliceChange(%q) = %q: %v", data, out, err)
		}
	})
}

// A short value under a long key leaves less budget than the key and its
// indentation take: the value is written compact (render once made a
// buffer of negative capacity and panicked, which net/http turned into a
// dropped connection on an admin PUT).
func TestSpliceShortValueLongKey(t *testing.T) {
	c := Change{Kind: KindFlag, Key: "a-rather-long-flag-key-name", Value: []byte(`{"on":true}`)}
	for _, data := range []string{"", "{}", "{\n  \"flags\": {\n    \"x\": {\n      \"on\": false\n    }\n  }\n}\n"} {
		out, changed, err := spliceChange([]byte(data), c, changeBudget(c))
		if err != nil || !changed {
			t.Fatalf("spliceChange(%q) = %q, %v, %v", data, out, changed, err)
		}
		doc, err := rules.ParseDocument(out)
		if err != nil || string(doc.Flags[c.Key]) != `{"on":true}` {
			t.Errorf("spliceChange(%q) wrote %q (%v)", data, out, err)
		}
	}

	// The same through an admin PUT to a file-backed server.
	path := filepath.Join(t.TempDir(), "flags.json")
	if err := os.WriteFile(path, []byte("{\n  \"flags\": {}\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, srv := openFileServer(t, path, FileStoreOptions{}, Options{AdminToken: adminToken})
	defer srv.Close()
	ts := httptest.NewServer(srv)
	defer ts.Close()
	body := `{"on":false,"variations":[1],"offVariation":0,"fallthrough":{"variation":0}}`
	if resp, got := do(t, "PUT", ts.URL+"/v1/admin/flags/"+strings.Repeat("k", 200), adminToken, body); resp.StatusCode/100 != 2 {
		t.Fatalf("PUT: %d %s", resp.StatusCode, got)
	}
}

// TestKillSwitchKeepsLayout: the kill switch on a flag laid out as people
// write them (one member a line, short arrays and objects on one line)
// changes its "version" and "on" lines and nothing else; it used to lay
// the whole flag out again on one line.
func TestKillSwitchKeepsLayout(t *testing.T) {
	before, err := os.ReadFile(filepath.Join("..", "testdata", "quickstart.json"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "flags.json")
	writeFile(t, path, string(before))
	_, url, _ := fileServer(t, path)
	if resp, body := do(t, "PATCH", url+"/v1/admin/flags/new-checkout", adminToken, `{"on": false}`,
		"Content-Type", "application/merge-patch+json"); resp.StatusCode != 200 {
		t.Fatalf("PATCH: %d %s", resp.StatusCode, body)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	was, is := strings.Split(string(before), "\n"), strings.Split(string(after), "\n")
	if len(was) != len(is) {
		t.Fatalf("%d lines, were %d:\n%s", len(is), len(was), after)
	}
	var changed []string
	for i := range was {
		if was[i] != is[i] {
			changed = append(changed, strings.TrimSpace(is[i]))
		}
	}
	if len(changed) != 2 || changed[0] != `"version": 4,` || changed[1] != `"on": false,` {
		t.Errorf("changed lines %q, want the version's and on's", changed)
	}
}
