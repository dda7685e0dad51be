#!/usr/bin/env bash
# Installs Debian's prometheus package (prometheus and promtool) when
# either is absent: the alert-rule tests, the monitoring suite
# (test/monitoring) and `make observe` need them.
set -euo pipefail
if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
  exit 0
fi
echo "prometheus/promtool not found: installing Debian's prometheus package" >&2
sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null
