#!/usr/bin/env bash
# A Docker image holding Debian's python3 (bookworm, the full standard library), made with debootstrap and
# `docker import`, so that no registry is asked for anything. The relay container runs on it, and so does
# the test image with botocore in it (tests/sdkimage.py). It is for machines that reach no registry, as CI
# here does; users who can pull use a public Python image (python:3.13-alpine, say) instead.
#
# Usage: bash tools/relay-image.sh [--force] [TAG]   (TAG: pytest-ecstask-test/relay:debian)
# An existing TAG is kept unless --force is given. DEBIAN_MIRROR overrides http://deb.debian.org/debian.
# Needs root (debootstrap chroots); installs debootstrap with apt-get when it is missing.
set -euo pipefail

tag=pytest-ecstask-test/relay:debian
force=0
for arg in "$@"; do
  case $arg in
    --force) force=1 ;;
    -h | --help) sed -n '2,9p' "$0"; exit 0 ;;
    -*) echo "relay-image: unknown option $arg (see --help)" >&2; exit 2 ;;
    *) tag=$arg ;;
  esac
done
suite=bookworm
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
export PATH=$PATH:/usr/sbin:/sbin  # debootstrap lives in /usr/sbin

if [[ $force == 0 ]] && docker image inspect "$tag" >/dev/null 2>&1; then
  echo "relay-image: $tag exists (--force builds it again)"
  exit 0
fi

if ! command -v debootstrap >/dev/null 2>&1; then
  echo "relay-image: installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/relay-image.XXXXXX")
rootfs=$work/rootfs
cleanup() {
  # debootstrap mounts /proc and /sys inside the rootfs; a run that fails can leave them mounted, and
  # rm must not walk into them.
  local mount
  awk -v root="$rootfs/" 'index($2, root) == 1 { print $2 }' /proc/mounts | sort -r \
    | while read -r mount; do umount -l "$mount" || true; done
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT

start=$SECONDS
echo "relay-image: debootstrap $suite (minbase + python3) from $mirror"
# --include resolves python3's dependencies (Depends only): the interpreter and libpython3.11-stdlib,
# which is the whole standard library but tkinter, idlelib, lib2to3, most of distutils and ensurepip
# (venv makes environments without pip). botocore needs none of those.
if ! debootstrap --variant=minbase --include=python3 "$suite" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1; then
  tail -n 30 "$work/debootstrap.log" >&2
  echo "relay-image: debootstrap failed (last lines above)" >&2
  exit 1
fi

# Nothing the relay reads: package indexes and caches, documentation, translations.
rm -rf "${rootfs:?}"/var/lib/apt/lists/* "${rootfs:?}"/var/cache/apt/* "${rootfs:?}"/var/cache/debconf/*-old \
  "${rootfs:?}"/usr/share/doc/* "${rootfs:?}"/usr/share/man/* "${rootfs:?}"/usr/share/info/* \
  "${rootfs:?}"/usr/share/locale/* "${rootfs:?}"/var/log/* "${rootfs:?}"/dev/*

tar -C "$rootfs" --numeric-owner -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  --message "debootstrap --variant=minbase --include=python3 $suite $mirror" \
  - "$tag" >/dev/null

size=$(docker image inspect --format '{{.Size}}' "$tag")
python=$(docker run --rm "$tag" python3 -c 'import platform; print(platform.python_version())')
echo "relay-image: built $tag in $((SECONDS - start))s: $((size / 1000000)) MB, Python $python"
