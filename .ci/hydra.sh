# Starts Ory Hydra v2.3.0, an OAuth 2.1 / OpenID Connect authorization
# server, on loopback for the tests (internal/hydratest). Meant to be sourced,
# by .ci/run or by hand from the repository's root:
#
#   source .ci/hydra.sh    # builds Hydra once (a few minutes), then starts it
#   go test ./internal/hydratest/
#   hydra_stop
#
# It exports
#   FILESTAGE_TEST_HYDRA_PUBLIC  http://127.0.0.1:<port>, the public API (/oauth2/auth, /oauth2/token, discovery, JWKS)
#   FILESTAGE_TEST_HYDRA_ADMIN   http://127.0.0.1:<port>, the admin API (/admin/...)
#   FILESTAGE_TEST_HYDRA_ISSUER  the issuer, exactly as in the tokens' iss claim
#                                and the discovery document: the public URL
#                                with a trailing slash, http://127.0.0.1:<port>/
#   FILESTAGE_TEST_HYDRA_BIN     the absolute path of the Hydra binary, with which
#                                hydratest.StartPrivate starts a test's own Hydra
# and defines the function
#   hydra_stop                   stops Hydra and removes its directory; safe to
#                                call more than once or when nothing started.
# It sets no trap: a caller with an EXIT trap of its own calls hydra_stop in it.
# Also set (not exported): HYDRA_PID, HYDRA_DIR (the log is "$HYDRA_DIR/log").
# It does not change the caller's shell options, and on failure it prints
# Hydra's log and returns 1 (so a caller under set -e exits).
#
# Hydra is built from the Go module proxy in a scratch module under
# ${XDG_CACHE_HOME:-$HOME/.cache}/filestage/hydra-v2.3.0/, never in this
# repository; the binary there is reused while it reports v2.3.0.
#
# The server runs with --dev (plain http on loopback), a throw-away sqlite
# database, JWT access tokens by default (opaque per client), PKCE enforced,
# dynamic client registration enabled (public /oauth2/register), and login and
# consent pages that do not exist: the tests accept login and consent through
# the admin API instead.
#
# hydratest.StartPrivate (internal/hydratest/hydratest.go) starts Hydras
# configured alike: the settings common to all instances are in
# internal/hydratest/hydra.env, read by both; the settings of an instance
# (database, secret, ports, URLs) and the commands run are in _hydra_start
# below and in StartPrivate, and must stay alike.

HYDRA_VERSION=v2.3.0
# The settings shared with hydratest.StartPrivate, found from this script's
# own path, so that it can be sourced from anywhere.
_hydra_settings=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." >/dev/null && pwd)/internal/hydratest/hydra.env

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

# _hydra_ready PORT PATH: an HTTP GET of 127.0.0.1:PORT/PATH answers 200.
# Plain bash (no curl needed), in a subshell so that fd 3 stays its own.
_hydra_ready() (
  exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
  printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1:%s\r\n\r\n' "$2" "$1" >&3
  IFS= read -r -t 5 status <&3 || exit 1
  [[ $status == HTTP/1.?" 200 "* ]]
) 2>/dev/null

# _hydra_free PORT: nothing accepts connections there.
_hydra_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

hydra_stop() {
  if [ -n "${HYDRA_PID:-}" ]; then
    kill "$HYDRA_PID" 2>/dev/null || true
    wait "$HYDRA_PID" 2>/dev/null || true
    HYDRA_PID=
  fi
  if [ -n "${HYDRA_DIR:-}" ]; then
    rm -rf "$HYDRA_DIR"
    HYDRA_DIR=
  fi
}

_hydra_start() {
  local attempt public admin secret started line _
  _hydra_build || return 1
  HYDRA_DIR=$(mktemp -d) || return 1
  secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
  # Hydra's configuration, as environment variables of its keys (dots become
  # underscores); only Hydra's own processes get them. Those of this instance
  # here (as in hydratest.StartPrivate), then the shared ones of hydra.env.
  local -a cfg=(
    "DSN=sqlite://$HYDRA_DIR/db.sqlite?_fk=true"
    "SECRETS_SYSTEM=$secret"
  )
  while IFS= read -r line || [ -n "$line" ]; do
    case $line in
      '' | '#'*) ;;
      *) cfg+=("$line") ;;
    esac
  done <"$_hydra_settings" || { echo "cannot read Hydra's settings $_hydra_settings"; hydra_stop; return 1; }
  if ! env "${cfg[@]}" "$_hydra_bin" migrate sql up -e --yes >"$HYDRA_DIR/log" 2>&1; then
    echo "hydra migrate failed:"; cat "$HYDRA_DIR/log"; hydra_stop; return 1
  fi
  # The ports, the URLs and the commands must stay like StartPrivate's.
  # Random ports below Linux's ephemeral range (32768-60999), where an
  # outgoing connection can hold a port nothing listens on; a port taken
  # anyway makes Hydra exit, and others are tried.
  started=
  for attempt in 1 2 3 4 5; do
    public=$((20000 + RANDOM % 12000))
    admin=$((20000 + RANDOM % 12000))
    [ "$public" != "$admin" ] || continue
    _hydra_free "$public" && _hydra_free "$admin" || continue
    env "${cfg[@]}" \
      SERVE_PUBLIC_PORT="$public" SERVE_ADMIN_PORT="$admin" \
      URLS_SELF_ISSUER="http://127.0.0.1:$public/" \
      URLS_SELF_PUBLIC="http://127.0.0.1:$public/" \
      URLS_SELF_ADMIN="http://127.0.0.1:$admin/" \
      WEBFINGER_OIDC_DISCOVERY_CLIENT_REGISTRATION_URL="http://127.0.0.1:$public/oauth2/register" \
      "$_hydra_bin" serve all --dev --sqa-opt-out >>"$HYDRA_DIR/log" 2>&1 &
    HYDRA_PID=$!
    for _ in $(seq 300); do
      if _hydra_ready "$public" /health/ready && _hydra_ready "$admin" /health/ready; then
        started=1; break
      fi
      kill -0 "$HYDRA_PID" 2>/dev/null || break
      sleep 0.1
    done
    [ -n "$started" ] && break
    kill "$HYDRA_PID" 2>/dev/null || true
    wait "$HYDRA_PID" 2>/dev/null || true
    HYDRA_PID=
    echo "hydra did not start on ports $public (public) and $admin (admin), attempt $attempt:"; cat "$HYDRA_DIR/log"
    : >"$HYDRA_DIR/log"
  done
  if [ -z "$started" ]; then
    echo "hydra did not start"; hydra_stop; return 1
  fi
  export FILESTAGE_TEST_HYDRA_PUBLIC="http://127.0.0.1:$public"
  export FILESTAGE_TEST_HYDRA_ADMIN="http://127.0.0.1:$admin"
  export FILESTAGE_TEST_HYDRA_ISSUER="http://127.0.0.1:$public/"
  FILESTAGE_TEST_HYDRA_BIN=$(cd -- "$(dirname -- "$_hydra_bin")" >/dev/null && pwd)/$(basename -- "$_hydra_bin") || { hydra_stop; return 1; }
  export FILESTAGE_TEST_HYDRA_BIN
}

_hydra_start || return 1
