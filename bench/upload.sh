#!/usr/bin/env bash
# The upload page against curl -T to a presigned URL, at full size: 256 MiB
# and 1 GiB through headless Chromium on loopback (bench/upload_test.go).
# Figures go in bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_UPLOAD_SIZES=${BENCH_UPLOAD_SIZES:-256MiB,1GiB} go test -run '^$' -bench '^BenchmarkUserUpload$' -benchtime "${ROUNDS:-3}x" -timeout 60m ./bench/
