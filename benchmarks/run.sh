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
echo "run.sh: scenarios S1–S8 and R1 × 7 libraries, $COUNT interleaved rounds of $BENCHTIME each (with -benchtime 1s, about 2 minutes a round)" >&2
: >"$RAW"
# One round of every cell at a time, COUNT times, rather than COUNT rounds of
# a cell in a row: a minute of interference on a shared machine then costs
# every cell one round, which the median drops, instead of costing one cell
# all of its rounds.
go test -c -o "$RAW.bin" .
i=0
while [ "$i" -lt "$COUNT" ]; do
	"$RAW.bin" -test.run '^$' -test.bench '^(BenchmarkScenarios|BenchmarkFlagstreamAllFlags)$' -test.benchmem -test.count 1 -test.benchtime "$BENCHTIME" -test.timeout 2h | tee -a "$RAW" >&2
	i=$((i + 1))
done
rm -f "$RAW.bin"
echo "run.sh: loading 10,000 flags, $LOADCOUNT rounds" >&2
go test -run '^$' -bench '^BenchmarkLoad10000(Distinct)?$' -benchmem -count "$LOADCOUNT" -benchtime 5x -timeout 1h . | tee -a "$RAW" >&2
go run ./cmd/benchtable "$RAW"
