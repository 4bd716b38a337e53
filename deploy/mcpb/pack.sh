#!/usr/bin/env bash
# Packs filestage's Claude Desktop bundle (MCPB) from GoReleaser's dist
# directory, validates it with the pinned mcpb CLI, and prints the path of
# the .mcpb it wrote.
#
#   bash deploy/mcpb/pack.sh DIST OUTDIR VERSION
#
# Run it from the directory GoReleaser ran in (the repository's root): the
# paths in DIST/artifacts.json are relative to it. It installs nothing:
# `npm ci --prefix deploy/mcpb` first.
set -euo pipefail

if [ $# -ne 3 ]; then
	echo "usage: $0 DIST OUTDIR VERSION" >&2
	exit 2
fi
dist=$1 outdir=$2 version=${3#v}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mcpb=$here/node_modules/.bin/mcpb

[ -n "$version" ] || { echo "VERSION is empty" >&2; exit 2; }
[ -f "$dist/artifacts.json" ] || { echo "$dist/artifacts.json not found: run GoReleaser first" >&2; exit 1; }
[ -x "$mcpb" ] || { echo "mcpb is not installed: npm ci --prefix deploy/mcpb" >&2; exit 1; }
[ -f "$root/LICENSE" ] || { echo "$root/LICENSE not found" >&2; exit 1; }

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir "$stage/server"

# The manifest picks a binary by OS (platform_overrides): macOS runs
# GoReleaser's universal binary (goarch "all"), which holds both processors;
# Linux's launcher picks one by `uname -m`; Windows has amd64 alone, as
# platform_overrides cannot tell arm64 from amd64 and Windows 11 on Arm runs
# amd64 binaries.
node - "$dist/artifacts.json" "$stage/server" <<'EOF'
const fs = require("fs");
const path = require("path");
const [artifactsFile, serverDir] = process.argv.slice(2);
const want = {
  "darwin/all": "filestage-darwin",
  "linux/amd64": "filestage-linux-amd64",
  "linux/arm64": "filestage-linux-arm64",
  "windows/amd64": "filestage-windows-amd64.exe",
};
const found = new Map();
for (const a of JSON.parse(fs.readFileSync(artifactsFile, "utf8"))) {
  const target = `${a.goos}/${a.goarch}`;
  // "Binary" covers builds, universal binaries and archives of format
  // binary, which point at their build's file.
  if (a.type !== "Binary" || a.extra?.Binary !== "filestage" || !(target in want)) continue;
  const file = path.resolve(a.path);
  if (found.has(target) && found.get(target) !== file) {
    console.error(`two filestage binaries for ${target} in ${artifactsFile}: ${found.get(target)} and ${file}`);
    process.exit(1);
  }
  found.set(target, file);
}
const missing = Object.keys(want).filter((t) => !found.has(t));
if (missing.length > 0) {
  console.error(`${artifactsFile} lists no filestage binary for ${missing.join(", ")} (darwin/all comes from .goreleaser.yaml's universal_binaries)`);
  process.exit(1);
}
for (const [target, file] of found) {
  const dest = path.join(serverDir, want[target]);
  fs.copyFileSync(file, dest);
  fs.chmodSync(dest, 0o755);
}
EOF

node - "$here/manifest.json" "$stage/manifest.json" "$version" <<'EOF'
const fs = require("fs");
const [from, to, version] = process.argv.slice(2);
const manifest = JSON.parse(fs.readFileSync(from, "utf8"));
manifest.version = version;
fs.writeFileSync(to, JSON.stringify(manifest, null, 2) + "\n");
EOF
cp "$root/LICENSE" "$stage/LICENSE"
chmod 0644 "$stage/manifest.json" "$stage/LICENSE"

mkdir -p "$outdir"
out=$(cd "$outdir" && pwd)/filestage.mcpb # no version: a stable .../releases/latest/download/ link
# stdout carries only the bundle's path; mcpb's reports go to stderr.
"$mcpb" validate "$stage/manifest.json" >&2
"$mcpb" pack "$stage" "$out" >&2
echo "$out"
