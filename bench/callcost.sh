#!/usr/bin/env bash
# Issue 14's per-call cost benchmark: filestage's request_presigned_upload
# against a minimal mcp-go echo server over streamable HTTP, 50 sessions,
# ABBA order, one load client; prints calls/s, server CPU per call and
# their ratio. CI runs it small (go test ./bench/callcost/).
#
#   bash bench/callcost.sh
#   bash bench/callcost.sh -sessions 20 -phase 10s -rounds 3
set -euo pipefail
cd "$(dirname "$0")/.."
exec go run ./bench/callcost "$@"
