# Builds Ory Hydra v2.3.0, an OAuth 2.1 / OpenID Connect authorization
# server, for the tests (internal/hydratest), and exports its path. Meant to
# be sourced, by .ci/run or by hand from the repository's root:
#
#   source .ci/hydra.sh    # builds Hydra once (a few minutes), then reuses it
#   go test ./...
#
# It exports FILESTAGE_TEST_HYDRA_BIN, the absolute path of the binary. Each
# test that needs Hydra starts one of its own with it (hydratest.Start, on
# free loopback ports, with a throw-away sqlite database and the settings of
# internal/hydratest/hydra.env): Hydra on sqlite cannot take the concurrent
# writes of test packages sharing one. It does not change the caller's
# shell options, and on failure it returns 1 (so a caller under set -e
# exits).
#
# Hydra is built from the Go module proxy in a scratch module under
# ${XDG_CACHE_HOME:-$HOME/.cache}/filestage/hydra-v2.3.0/, never in this
# repository; the binary there is reused while it reports v2.3.0.

HYDRA_VERSION=v2.3.0

# _hydra_build makes sure $_hydra_bin is a Hydra $HYDRA_VERSION binary.
_hydra_build() {
  local cache=${XDG_CACHE_HOME:-$HOME/.cache}/filestage/hydra-$HYDRA_VERSION
  _hydra_bin=$cache/hydra
  if [ -x "$_hydra_bin" ] && _hydra_is_version "$_hydra_bin"; then
    return 0
  fi
  command -v gcc >/dev/null || { apt-get update -qq && apt-get install -y -qq gcc libc6-dev; } || return 1
  echo "building Ory Hydra $HYDRA_VERSION into $cache (takes a few minutes)"
  mkdir -p "$cache/src" || return 1
  # A subshell, so that cd and the variables stay in it; GOFLAGS and GOWORK
  # are cleared so that the caller's cannot reach the scratch module. (set -e
  # would not apply here, inside a function called with ||: hence the &&.)
  (
    cd "$cache/src" &&
    export GOFLAGS= GOWORK=off CGO_ENABLED=1 &&
    { [ -f go.mod ] || go mod init filestage-hydra-build; } &&
    go get -tool "github.com/ory/hydra/v2@$HYDRA_VERSION" &&
    # Hydra's go.mod replaces pop with Ory's fork; replace directives of a
    # dependency do not apply, so it is repeated here.
    go mod edit -replace github.com/gobuffalo/pop/v6=github.com/ory/pop/v6@v6.2.1-0.20241121111754-e5dfc0f3344b &&
    go mod tidy &&
    # Without -X, `hydra version` says "master".
    time go build -tags sqlite,sqlite_omit_load_extension \
      -ldflags "-X github.com/ory/hydra/v2/driver/config.Version=$HYDRA_VERSION" \
      -o ../hydra.new github.com/ory/hydra/v2 &&
    mv ../hydra.new ../hydra
  ) || return 1
  _hydra_is_version "$_hydra_bin" || { echo "built $_hydra_bin, but it is not Hydra $HYDRA_VERSION:"; "$_hydra_bin" version; return 1; }
}

# _hydra_is_version: the Version line of `hydra version`, without a leading v
# and surrounding space, is the wanted one.
_hydra_is_version() {
  local v
  v=$("$1" version 2>/dev/null | awk -F: '$1 == "Version" { gsub(/[[:space:]]/, "", $2); sub(/^v/, "", $2); print $2 }') || return 1
  [ "$v" = "${HYDRA_VERSION#v}" ]
}

_hydra_build || return 1
FILESTAGE_TEST_HYDRA_BIN=$(cd -- "$(dirname -- "$_hydra_bin")" >/dev/null && pwd)/$(basename -- "$_hydra_bin") || return 1
export FILESTAGE_TEST_HYDRA_BIN
