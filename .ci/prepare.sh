# Sourced by .ci/run and .ci/example: what a fresh Debian machine lacks for the tests and the example.
# Needs root for apt-get and dockerd, as on a CI runner.

engine_answers() { timeout 10 docker version >/dev/null 2>&1; }

# A Docker engine that answers: Debian's docker.io installed when missing, dockerd started in the
# background (log: /tmp/dockerd.log) when none runs.
ensure_engine() {
  engine_answers && return 0
  if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
    echo "ci: installing Docker (Debian docker.io)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
  fi
  echo "ci: starting dockerd (log: /tmp/dockerd.log)"
  nohup dockerd >/tmp/dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    engine_answers && return 0
    sleep 1
  done
  echo "ci: dockerd did not answer; its log:"
  tail -n 50 /tmp/dockerd.log
  return 1
}

# The tests and the example build their images from Debian's static busybox (no registry is reachable).
ensure_busybox() {
  dpkg -s busybox-static >/dev/null 2>&1 && return 0
  echo "ci: installing busybox-static"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
}

# The relay container and the botocore test image run on Debian's python3, imported from a debootstrap
# (no registry is reachable). The script keeps an image built already and says so.
ensure_relay_image() {
  bash tools/relay-image.sh
}
