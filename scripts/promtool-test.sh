#!/usr/bin/env bash
# Checks the alert rules and runs their unit tests with promtool, from
# Debian's prometheus package (installed when absent).
set -euo pipefail
"$(dirname "$0")/install-prometheus.sh"
cd "$(dirname "$0")/../charts/fhirgate/rules"
promtool check rules fhirgate-alerts.yaml
promtool test rules fhirgate-alerts_test.yaml
