#!/usr/bin/env bash
# Issue 5's load test at full size, as issue 14 measures it: 200
# streamable HTTP and 100 SSE sessions at once on the real filestage
# binary (local store, loopback, a process of its own), each making 50
# request_presigned_upload and 5 stage_connector_file calls of 1 MiB,
# its presigns after its stages and on average 200 ms apart (an assistant
# writes between calls). Prints latencies, the server's peak RSS and CPU,
# and goroutines; fails on any wrong or missing answer. CI runs the same
# test at a small size, in process, under -race.
#
#   bash bench/load.sh                              # 200,100,50,5
#   FILESTAGE_LOAD=50,25,20,2 bash bench/load.sh
#   FILESTAGE_LOAD_ORDER=batched FILESTAGE_LOAD_THINK=0 bash bench/load.sh   # issue 5's order
#   FILESTAGE_LOAD_BIN= bash bench/load.sh          # the server in the test's process
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -z "${FILESTAGE_LOAD_BIN+set}" ]; then
  go build -o "$work/filestage" .
  export FILESTAGE_LOAD_BIN=$work/filestage
fi
FILESTAGE_LOAD=${FILESTAGE_LOAD:-200,100,50,5} FILESTAGE_LOAD_THINK=${FILESTAGE_LOAD_THINK-200ms} FILESTAGE_LOAD_REPORT=$work/report \
  go test -count=1 -timeout 30m -run '^TestLoad$' ./bench/ >/dev/null || { echo "load test failed; rerun with -v: go test -v -run TestLoad ./bench/" >&2; exit 1; }
cat "$work/report"
