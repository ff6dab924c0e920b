#!/usr/bin/env bash
# fuzz.sh runs every decoder's fuzz target for FUZZTIME each (default 30s),
# seeded with its testdata samples and its testdata/hostile corpus, through the
# validation boundary (decode.Bounded) run uses.
set -euo pipefail
cd "$(dirname "$0")/.."
t="${FUZZTIME:-30s}"
for pkg in canaljson canalpb maxwell debezium jsonl; do
	echo "== fuzz source/decode/$pkg ($t)"
	go test "./source/decode/$pkg" -run '^$' -fuzz FuzzDecode -fuzztime "$t"
done
