#!/usr/bin/env bash
# Regression check for machines whose global pip config carries a `constraint =` line (see the README's
# "The Pants launcher"): a Pants resolve must work there, and the check must be able to fail.
#
# It writes a throwaway global pip config (XDG_CONFIG_DIRS/pip/pip.conf, as pip discovers it) with a
# constraint line, passes XDG_CONFIG_DIRS into Pants' processes so pex's pip would find it, and downloads ruff
# into empty caches (no process cache, fresh named caches), so pip really runs:
#   1. with pants.toml as it is (PIP_CONFIG_FILE=/dev/null): the resolve must succeed;
#   2. with that setting removed: the resolve must fail, and ./pants must print its one-line hint.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
mkdir -p "${work}/xdg/pip"
echo "torch<=2.14.1" >"${work}/constraints.txt"
printf '[global]\nconstraint = %s\n' "${work}/constraints.txt" >"${work}/xdg/pip/pip.conf"

resolve() {
  local run="$1" env_vars="$2"
  XDG_CONFIG_DIRS="${work}/xdg" ./pants --no-pantsd --no-local-cache \
    --named-caches-dir="${work}/named-caches-${run}" \
    "--subprocess-environment-env-vars=${env_vars}" \
    lint --only=ruff src/python/bert_runtime/config.py
}

echo "pip-config check 1/2: resolve under a global pip config with a constraint line (must succeed)"
resolve with-fix "+['XDG_CONFIG_DIRS']"

echo "pip-config check 2/2: the same without PIP_CONFIG_FILE=/dev/null (must fail, with the launcher's hint)"
if resolve without-fix "['XDG_CONFIG_DIRS']" >"${work}/without-fix.log" 2>&1; then
  cat "${work}/without-fix.log"
  echo "FAIL: the resolve succeeded without the fix, so this check no longer exercises pip's config" >&2
  exit 1
fi
if ! grep -q "^./pants: a package download inside Pants failed" "${work}/without-fix.log"; then
  cat "${work}/without-fix.log"
  echo "FAIL: the failed download did not end with the launcher's one-line hint" >&2
  exit 1
fi
grep "^./pants: a package download" "${work}/without-fix.log"
echo "pip-config check passed"
