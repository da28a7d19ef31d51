#!/usr/bin/env bash
# Regenerate the two hashed lock files from pyproject.toml:
#   requirements-dev.lock  runtime + development (tests, linters, the test OpenID provider): make
#   requirements.lock      runtime only, at the same versions: the container image
# The development lock is resolved first (pip-compile keeps the versions already in it unless
# pyproject.toml asks for others); the runtime lock is then resolved under its pins, so both hold
# the same version of every package they share.
set -euo pipefail
cd "$(dirname "$0")/.."
compile=${LOCK_COMPILER:-.venv/bin/pip-compile}
export CUSTOM_COMPILE_COMMAND="infra/locks.sh"
common=(--generate-hashes --no-emit-find-links --no-emit-index-url --strip-extras --quiet)
"$compile" "${common[@]}" --extra=dev --output-file=requirements-dev.lock pyproject.toml
pins=$(mktemp)
trap 'rm -f "$pins"' EXIT
grep -E '^[A-Za-z0-9_.-]+==' requirements-dev.lock | sed 's/ *\\$//' > "$pins"
"$compile" "${common[@]}" --no-annotate --constraint="$pins" --output-file=requirements.lock pyproject.toml
echo "requirements-dev.lock: $(grep -cE '^[A-Za-z0-9_.-]+==' requirements-dev.lock) packages;" \
  "requirements.lock: $(grep -cE '^[A-Za-z0-9_.-]+==' requirements.lock) packages"
