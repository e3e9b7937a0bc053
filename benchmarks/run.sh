#!/bin/sh
# run.sh — runs every benchmark of this module, several rounds, and prints
# one markdown table (docs/PERFORMANCE.md publishes its output).
#
# Needs only Go: peers are fetched by `go test` through the module proxy.
# Environment:
#   COUNT      rounds of each scenario benchmark (default 6)
#   BENCHTIME  -benchtime of the scenario benchmarks (default 1s)
#   LOADCOUNT  rounds of the 10,000-flag load benchmark (default 5)
#   RAW        file that keeps the raw `go test -bench` output (default: a temporary file)
set -eu
cd "$(dirname "$0")"
COUNT="${COUNT:-6}"
BENCHTIME="${BENCHTIME:-1s}"
LOADCOUNT="${LOADCOUNT:-5}"
RAW="${RAW:-}"
keep=1
if [ -z "$RAW" ]; then
	RAW="$(mktemp)"
	keep=0
fi
cleanup() { [ "$keep" = 1 ] || rm -f "$RAW"; }
trap cleanup EXIT

echo "run.sh: correctness checks (go test)" >&2
go test -count=1 . >&2
echo "run.sh: scenarios S1–S8 and R1 × 7 libraries, $COUNT rounds of $BENCHTIME each (with -benchtime 1s, about 2 minutes a round)" >&2
: >"$RAW"
go test -run '^$' -bench '^(BenchmarkScenarios|BenchmarkFlagstreamAllFlags)$' -benchmem -count "$COUNT" -benchtime "$BENCHTIME" -timeout 2h . | tee -a "$RAW" >&2
echo "run.sh: loading 10,000 flags, $LOADCOUNT rounds" >&2
go test -run '^$' -bench '^BenchmarkLoad10000(Distinct)?$' -benchmem -count "$LOADCOUNT" -benchtime 5x -timeout 1h . | tee -a "$RAW" >&2
go run ./cmd/benchtable "$RAW"
