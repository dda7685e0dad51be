#!/usr/bin/env bash
# make observe: the `make run` stack — the legacy simulators (:9101,
# :9102) and the gateway (:8080, metrics :9090) — plus a Prometheus on
# 127.0.0.1:9099 that scrapes the gateway every 5 s and evaluates the
# chart's alert rules. Prints a Prometheus link for each dashboard panel.
# Ctrl-C stops everything. Installs Debian's prometheus when absent.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-prometheus.sh
work=$(mktemp -d /tmp/fhirgate-observe-XXXXXX)
cp charts/fhirgate/rules/fhirgate-alerts.yaml "$work/rules.yaml"
cat > "$work/prometheus.yml" <<CONF
global: {scrape_interval: 5s, evaluation_interval: 5s}
rule_files: [rules.yaml]
scrape_configs:
  - job_name: fhirgate
    static_configs: [{targets: ["127.0.0.1:9090"]}]
CONF
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT INT TERM
bin/legacysim fachdienst --listen 127.0.0.1:9101 & pids+=($!)
bin/legacysim gtk --listen 127.0.0.1:9102 & pids+=($!)
for port in 9101 9102; do
  for _ in $(seq 1 50); do curl -sf -o /dev/null "http://127.0.0.1:$port/demo/jwks.json" && break; sleep 0.1; done
done
bin/fhirgate serve --config routes.yaml & pids+=($!)
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/data" \
  --web.listen-address=127.0.0.1:9099 --log.level=warn & pids+=($!)
for _ in $(seq 1 100); do curl -sf -o /dev/null http://127.0.0.1:9099/-/ready && break; sleep 0.1; done
cat <<TEXT

Prometheus: http://127.0.0.1:9099   alerts: http://127.0.0.1:9099/alerts   targets: http://127.0.0.1:9099/targets
The dashboard's panels as Prometheus queries:
TEXT
go run ./scripts/dashlinks -prometheus http://127.0.0.1:9099
echo
echo "Send traffic with the README's demo blocks; break the GtK with curl -X POST 'http://127.0.0.1:9102/admin/fault?mode=status500&count=50'."
wait "${pids[2]}"
