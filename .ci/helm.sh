# Installs helm v3.22.0 for the chart's tests (deploy/helm_test.go, which
# find it in GOBIN or GOPATH/bin), built from the Go module proxy; a binary
# of this version is reused. Meant to be sourced, by .ci/run or by hand from
# the repository's root; it leaves the caller's shell options alone and
# returns 1 on failure (so a caller under set -e exits).

HELM_VERSION=v3.22.0

_helm_install() {
  local gobin installed
  gobin=$(go env GOBIN) || return 1
  gobin=${gobin:-$(go env GOPATH | cut -d: -f1)/bin}
  installed=$(go version -m "$gobin/helm" 2>/dev/null || true)
  if grep -Eq "^[[:space:]]+mod[[:space:]]+helm.sh/helm/v3[[:space:]]+$HELM_VERSION[[:space:]]" <<<"$installed"; then
    return 0
  fi
  # GOFLAGS cleared: the caller's (-mod=..., say) are for this module, not helm's.
  GOFLAGS= go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
}

_helm_install || return 1
unset -f _helm_install
