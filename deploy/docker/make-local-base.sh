#!/usr/bin/env bash
# Make a local base image with Python 3.11 where public registries (Docker Hub) are unreachable:
# Debian bookworm (minbase) from the Debian mirror, plus python3 (3.11) and CA certificates.
# Usage: deploy/docker/make-local-base.sh [IMAGE]   (root; needs debootstrap and podman)
# Then build with --build-arg BASE_IMAGE=IMAGE (default IMAGE: localhost/bert-serve-base:bookworm).
set -euo pipefail
image="${1:-localhost/bert-serve-base:bookworm}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
if podman image exists "${image}"; then
  echo "${image} exists"
  exit 0
fi
rootfs="$(mktemp -d)"
trap 'rm -rf "${rootfs}"' EXIT
debootstrap --variant=minbase --include=python3,ca-certificates bookworm "${rootfs}" "${mirror}" >/dev/null
# Keep the image small: no apt lists, docs or caches.
rm -rf "${rootfs}"/var/lib/apt/lists/* "${rootfs}"/var/cache/apt/* "${rootfs}"/usr/share/doc/* \
  "${rootfs}"/usr/share/man/* "${rootfs}"/usr/share/locale/*
tar -C "${rootfs}" -c . | podman import --change 'CMD ["/bin/bash"]' - "${image}" >/dev/null
echo "${image}: $(podman image inspect --format '{{.Size}}' "${image}" | numfmt --to=iec)"
