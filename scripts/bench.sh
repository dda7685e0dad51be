#!/usr/bin/env bash
# make bench: the side-by-side load benchmark (test/bench). Installs
# Debian's nginx (backend and reference proxy), wrk (the saturation
# generator) and redis-server (-redis-limits) when absent; needs two cores (taskset pins the generators and
# the proxy under test apart).
#   scripts/bench.sh [flags of test/bench/cmd/bench, e.g. -duration 10s -reps 5]
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v nginx >/dev/null || missing+=(nginx)
command -v wrk >/dev/null || missing+=(wrk)
command -v redis-server >/dev/null || missing+=(redis-server)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}" >&2
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
cd test/bench
exec go run ./cmd/bench "$@"
