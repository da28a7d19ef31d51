#!/usr/bin/env bash
# Build the pinned Helm from the Go module proxy into .tools/bin (ignored by git), once; print its
# version. Needs the Go toolchain. `make chart` and CI call it; it does nothing when that Helm is there.
set -euo pipefail
cd "$(dirname "$0")/../.."

HELM_MODULE=helm.sh/helm/v4
HELM_VERSION=v4.3.2
BIN="$PWD/.tools/bin"
helm="$BIN/helm"

if [ -x "$helm" ] && "$helm" version --template '{{.Version}}' 2>/dev/null | grep -qx "$HELM_VERSION"; then
  echo "helm $HELM_VERSION ($helm)"
  exit 0
fi
if ! command -v go >/dev/null; then
  echo "install-helm: Helm is built from source and needs Go (https://go.dev/dl/): none on PATH" >&2
  exit 1
fi
echo "== building helm $HELM_VERSION with $(go version | cut -d' ' -f3) (several minutes, once)"
start=$(date +%s)
mkdir -p "$BIN"
# -ldflags: the version that `helm version` reports, as Helm's own release build sets it.
GOBIN="$BIN" GOFLAGS=-buildvcs=false go install \
  -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" \
  "$HELM_MODULE/cmd/helm@$HELM_VERSION"
echo "helm $("$helm" version --template '{{.Version}}') ($helm), built in $(( $(date +%s) - start )) s"
