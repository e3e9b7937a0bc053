// Package schema holds the JSON Schema (draft 2020-12) of flagstream flag
// documents, flags.schema.json, for editors and tools: point a document's
// "$schema" member at it, or map *.flags.json to it in your editor.
//
// The schema checks a document's shape: member types, required members,
// operators, keys, index and weight ranges. What needs the whole flag —
// weights summing to 100000, variations of one JSON type, valid regular
// expressions, indexes within the variations — is checked by `flags lint`,
// which also accepts the "$schema" member. The package's tests validate
// every document of the repository's testdata with it and check that it
// agrees with lint on a corpus of good and bad documents.
package schema

import _ "embed"

// JSON is flags.schema.json.
//
//go:embed flags.schema.json
var JSON []byte
