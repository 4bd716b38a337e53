#!/usr/bin/env bash
# Issue 9's abuse benchmark at full size: one filestage HTTP server (the
# real binary, local store, loopback) under 2,000 trickling connections,
# 2,000 idle sessions, 50 endless stagers and 20 gzip bombers for 60 s,
# while one good client presigns and stages 1 MiB files. Prints the good
# client's latencies and errors, the server's peak RSS, fds and spool use,
# and whether everything returned to its baseline; exits non-zero when a
# target is missed. CI runs it small (go test ./bench/abuse/).
#
#   bash bench/abuse.sh
#   bash bench/abuse.sh -duration 20s -tricklers 500
set -euo pipefail
cd "$(dirname "$0")/.."
exec go run ./bench/abuse "$@"
