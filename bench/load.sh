#!/usr/bin/env bash
# Issue 5's load test at full size: 200 streamable HTTP and 100 SSE
# sessions at once on one filestage HTTP server (local store, loopback),
# each making 50 request_presigned_upload and 5 stage_connector_file calls
# of 1 MiB. Prints latencies, peak RSS and goroutines; fails on any wrong
# or missing answer. CI runs the same test at a small size under -race.
#
#   bash bench/load.sh                       # 200,100,50,5
#   FILESTAGE_LOAD=50,25,20,2 bash bench/load.sh
set -euo pipefail
cd "$(dirname "$0")/.."
report=$(mktemp)
trap 'rm -f "$report"' EXIT
FILESTAGE_LOAD=${FILESTAGE_LOAD:-200,100,50,5} FILESTAGE_LOAD_REPORT=$report \
  go test -count=1 -timeout 30m -run '^TestLoad$' ./bench/ >/dev/null || { echo "load test failed; rerun with -v: go test -v -run TestLoad ./bench/" >&2; exit 1; }
cat "$report"
