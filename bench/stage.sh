#!/usr/bin/env bash
# Issue 4's benchmark: stages files from a loopback HTTP source and from
# local paths into the local store and into the S3 test server (versitygw),
# beside a curl + md5sum + curl -T baseline of the same bytes, and prints
# a Markdown table of median wall times, their ratio and peak RSS.
#
#   bash bench/stage.sh                                  # 16MiB,256MiB,1GiB; local,s3,file; 3 rounds
#   SIZES=16MiB ROUNDS=1 TARGETS=local bash bench/stage.sh
#
# Scratch files go to $TMPDIR (or /tmp): point it at the disk to measure,
# with room for about 4x the largest size. Run it on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v curl >/dev/null || missing+=(curl)
command -v md5sum >/dev/null || missing+=(coreutils)
if [ ${#missing[@]} -gt 0 ]; then
  echo "the baseline needs curl and md5sum: apt-get install ${missing[*]}" >&2
  exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/filestage" .
go build -o "$tmp/stage" ./bench/stage
"$tmp/stage" -bin "$tmp/filestage" -sizes "${SIZES:-16MiB,256MiB,1GiB}" -targets "${TARGETS:-local,s3,file}" -rounds "${ROUNDS:-3}"
