# Builds the container image from a GoReleaser snapshot's linux/amd64
# binary with podman, as GoReleaser's dockers_v2 lays out its build
# context, and exports FILESTAGE_TEST_IMAGE for container_test.go. Meant
# to be sourced from the repository's root after
# `goreleaser release --snapshot --clean --skip=docker`; returns 1 on
# failure (so a caller under set -e exits).
#
# podman runs rootful here without systemd: the vfs storage driver (no
# overlay mounts in a sandbox), runc, cgroupfs, and no default ulimits
# (raising them is refused). CONTAINERS_CONF and CONTAINERS_STORAGE_CONF
# carry that to every podman the tests start.

_container_build() {
  command -v podman >/dev/null && command -v runc >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc; } || return 1
  local state=${XDG_CACHE_HOME:-$HOME/.cache}/filestage/containers
  mkdir -p "$state"
  cat >"$state/containers.conf" <<CONF
[containers]
default_ulimits = []
[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
CONF
  cat >"$state/storage.conf" <<CONF
[storage]
driver = "vfs"
runroot = "$state/run"
graphroot = "$state/storage"
CONF
  export CONTAINERS_CONF=$state/containers.conf CONTAINERS_STORAGE_CONF=$state/storage.conf

  local bin ctx version
  bin=$(ls dist/filestage_linux_amd64_v1/filestage) || return 1
  # As GoReleaser's .Version, without the v.
  version=$(node -p 'require("./dist/metadata.json").version') || return 1
  ctx=$(mktemp -d)
  mkdir -p "$ctx/linux/amd64" "$ctx/deploy"
  cp "$bin" "$ctx/linux/amd64/filestage"
  cp Containerfile "$ctx/"
  cp -r deploy/container "$ctx/deploy/" # with the CA bundle GoReleaser's before hook copied
  FILESTAGE_TEST_IMAGE=localhost/filestage:ci
  podman rmi -f "$FILESTAGE_TEST_IMAGE" >/dev/null 2>&1
  podman build --quiet --platform linux/amd64 --build-arg "VERSION=$version" \
    --build-arg "REVISION=$(git rev-parse HEAD)" -f "$ctx/Containerfile" -t "$FILESTAGE_TEST_IMAGE" "$ctx" >/dev/null
  local rc=$?
  rm -rf "$ctx"
  # Images and volumes earlier runs left behind, but this image.
  podman image prune -f >/dev/null 2>&1
  podman volume prune -f >/dev/null 2>&1
  export FILESTAGE_TEST_IMAGE
  return $rc
}

_container_build || return 1
unset -f _container_build
