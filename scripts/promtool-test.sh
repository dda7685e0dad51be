#!/usr/bin/env bash
# Checks the alert rules and runs their unit tests with promtool, from
# Debian's prometheus package (installed when absent).
set -euo pipefail
cd "$(dirname "$0")/../charts/fhirgate/rules"
if ! command -v promtool >/dev/null; then
  echo "promtool not found: installing Debian's prometheus package" >&2
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
promtool check rules fhirgate-alerts.yaml
promtool test rules fhirgate-alerts_test.yaml
