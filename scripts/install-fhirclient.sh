#!/usr/bin/env bash
# Installs the FHIR client library the client suite (test/fhirclient) drives
# the gateway with: fhir-kit-client from npm, at the version package-lock.json
# pins. Node is on these machines; npm ci is skipped when already installed.
set -euo pipefail
cd "$(dirname "$0")/../test/fhirclient"
command -v node >/dev/null || { echo "node is required for test/fhirclient" >&2; exit 1; }
want=$(node -p "require('./package.json').dependencies['fhir-kit-client']")
have=$(node -p "try { require('./node_modules/fhir-kit-client/package.json').version } catch { '' }")
if [ "$want" = "$have" ]; then
  exit 0
fi
npm ci --no-audit --no-fund --loglevel=error >/dev/null
