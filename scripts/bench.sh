#!/usr/bin/env bash
# make bench: the side-by-side load benchmark (test/bench). Installs
# Debian's nginx when absent; needs two cores (taskset pins the generator
# and the proxy under test apart).
#   scripts/bench.sh [flags of test/bench/cmd/bench, e.g. -duration 10s -reps 5]
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v nginx >/dev/null; then
  echo "nginx not found: installing Debian's nginx package" >&2
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends nginx >/dev/null
fi
cd test/bench
exec go run ./cmd/bench "$@"
