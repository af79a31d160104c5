#!/usr/bin/env bash
# CI's container step (.ci/run, after the tests): build the CPU API image and the loadkit image with
# Pants, on podman (no Docker engine), run the API read-only with a tiny model, wait until it is
# ready, run `loadkit smoke` against it from the loadkit container, and tear everything down.
# Needs root, podman, runc and debootstrap (.ci/run installs them) or BASE_IMAGE set to a base that
# is already present.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

max_api_mb=700
export CONTAINERS_CONF="${PWD}/deploy/docker/containers.conf"
export BASE_IMAGE="${BASE_IMAGE:-localhost/bert-serve-base:bookworm}"
workdir="$(mktemp -d)"
api_container="bert-serve-ci-api-$$"

cleanup() {
  podman rm -f "${api_container}" >/dev/null 2>&1 || true
  [ -n "${service_pid:-}" ] && kill "${service_pid}" 2>/dev/null || true
  rm -rf "${workdir}"
}
trap cleanup EXIT

# Overlay storage where the kernel allows it, else vfs (slower, always works).
podman info >/dev/null 2>&1 || export STORAGE_DRIVER=vfs

# Pants' docker backend drives the docker CLI; `podman system service` answers it.
if command -v docker >/dev/null; then
  podman system service --time=0 "unix://${workdir}/podman.sock" &
  service_pid=$!
  export DOCKER_HOST="unix://${workdir}/podman.sock" DOCKER_BUILDKIT=0
  for _ in $(seq 50); do [ -S "${workdir}/podman.sock" ] && break; sleep 0.2; done
fi

if [[ "${BASE_IMAGE}" == localhost/* ]]; then
  deploy/docker/make-local-base.sh "${BASE_IMAGE}"
fi

PANTS_DOCKER_BUILD_ARGS="['BASE_IMAGE=${BASE_IMAGE}']" \
  ./pants --no-pantsd package deploy/docker:api-cpu deploy/docker:loadkit

api_image=bert-serve/api-cpu:0.1.0
loadkit_image=bert-serve/loadkit:0.1.0
image_mb() { echo "$(( $(podman image inspect --format '{{.Size}}' "$1") / 1000000 ))"; }
api_mb="$(image_mb "${api_image}")"
printf 'image %-28s %5d MB\n' "${api_image}" "${api_mb}" \
  "${loadkit_image}" "$(image_mb "${loadkit_image}")"
if [ "${api_mb}" -gt "${max_api_mb}" ]; then
  echo "the CPU API image is ${api_mb} MB, over the ${max_api_mb} MB budget" >&2
  exit 1
fi

# A tiny model (a repo fixture), readable by the image's non-root user.
cp -r src/python/bert_runtime/testdata/tiny-bert-mlm "${workdir}/model"
chmod -R a+rX "${workdir}/model"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

# The HEALTHCHECK's timer needs systemd, absent here (podman logs "unable to get systemd
# connection": harmless); the check is run by hand below instead.
podman run -d --name "${api_container}" --read-only --network host --health-interval=disable \
  -e HOST=127.0.0.1 -e PORT="${port}" -e MODEL_NAME=/model \
  -v "${workdir}/model:/model:ro" "${api_image}" >/dev/null
echo "waiting for http://127.0.0.1:${port}/v2/health/ready"
python3 - "${port}" <<'PY'
"""Wait (at most 120 s) until the containerized service says it is ready."""
import sys
import time
import urllib.request

url = f"http://127.0.0.1:{sys.argv[1]}/v2/health/ready"
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            if response.status == 200:
                sys.exit(0)
    except OSError:
        pass
    time.sleep(1)
sys.exit(f"{url} not ready after 120 s")
PY
podman healthcheck run "${api_container}" && echo "image HEALTHCHECK: healthy"
podman exec "${api_container}" id -u | grep -qx 10001 || { echo "the API runs as root" >&2; exit 1; }
podman logs "${api_container}" >"${workdir}/api.log" 2>&1
grep -q "malloc tunable set" "${workdir}/api.log" \
  || { echo "the API runs without the huge-pages malloc tunable" >&2; exit 1; }

podman run --rm --read-only --network host "${loadkit_image}" \
  smoke --endpoint "http://127.0.0.1:${port}"
echo "container smoke passed"
