#!/usr/bin/env bash
# Installs Debian's redis-server when absent: the shared-limit tests
# (gateway/ratelimit/redisstore, test/scaleout) start their own
# redis-server processes on loopback.
set -euo pipefail
if command -v redis-server >/dev/null && command -v redis-cli >/dev/null; then
  exit 0
fi
echo "redis-server not found: installing Debian's redis-server package" >&2
sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
$sudo apt-get update -qq
# No service is started by the package in a container without an init
# system; where one is, it is left alone (the tests use ports of their own).
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends redis-server redis-tools >/dev/null
