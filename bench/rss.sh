#!/usr/bin/env bash
# Peak RSS of filestage while it stages 16 MiB, 256 MiB and 1 GiB files from a
# loopback HTTP source into the local store (real binary, MCP over stdio).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(mktemp -d)/filestage
go build -o "$bin" .
go run ./bench/rss -bin "$bin" -sizes "${SIZES:-16MiB,256MiB,1GiB}"
rm -rf "$(dirname "$bin")"
