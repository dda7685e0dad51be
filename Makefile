# fhirgate — the commands a newcomer needs:
#   make run    the gateway with its bundled legacy simulators, default routes.yaml
#   make test   every test (unit, config, end-to-end with real processes, short fuzz runs)
SHELL := /bin/bash
GO    ?= go
BIN   := bin

.PHONY: all build run observe test vet fmt-check fuzz chart-test chart-files chaos bench clean

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

# Starts the simulators — E-Rezept Fachdienst (:9101) and Twiin GtK
# (:9102) — waits for them, then the gateway (:8080, metrics on :9090).
# Ctrl-C stops all three.
run: build
	@set -euo pipefail; \
	$(BIN)/legacysim fachdienst --listen 127.0.0.1:9101 & sim=$$!; \
	$(BIN)/legacysim gtk --listen 127.0.0.1:9102 & gtk=$$!; \
	trap 'kill $$sim $$gtk 2>/dev/null' EXIT INT TERM; \
	for port in 9101 9102; do \
	  for i in $$(seq 1 50); do curl -sf -o /dev/null http://127.0.0.1:$$port/demo/jwks.json && break; sleep 0.1; done; \
	done; \
	$(BIN)/fhirgate serve --config routes.yaml

# make run plus a Prometheus (127.0.0.1:9099) scraping the gateway with the
# chart's alert rules; prints the dashboard's panels as Prometheus links.
observe: build
	scripts/observe.sh

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi

# The whole suite: formatting, vet, every package's tests, then the suites
# of real processes (test/: end-to-end, chaos, security, monitoring) one
# package at a time — each starts gateways, simulators or Prometheus and
# measures latency under load, which a second suite on the other core
# would disturb —, then each fuzz target for a fixed number of executions.
test: fmt-check vet chart-test
	scripts/install-prometheus.sh
	scripts/install-redis.sh
	scripts/install-fhirclient.sh
	$(GO) test -count=1 $$($(GO) list ./... | grep -v '/test/')
	$(GO) test -count=1 -p 1 ./test/...
	BUDGET=count FUZZ_TARGETS="$(FUZZ_TARGETS)" scripts/fuzz.sh

# The Helm chart: rendered with Helm's engine for the default and the
# all-features values, decoded strictly into the Kubernetes types, compared
# with golden files (charts/test, a module of its own); then the alert
# rules through promtool check and promtool's unit tests.
chart-test:
	cd charts/test && $(GO) vet ./... && $(GO) test -count=1 ./...
	scripts/promtool-test.sh

# The full chaos and security suites: every fault from concurrent clients,
# more repetitions, and 30 s of overload at twice the saturation rate
# (`make test` runs them reduced).
chaos:
	set -o pipefail; FHIRGATE_CHAOS=full $(GO) test -count=1 -timeout 30m -v ./test/chaos/ ./test/security/ 2>&1 | \
	  grep -E '^(=== RUN|--- |PASS|FAIL|ok)|→|overload|saturation|goroutines|p99'

# The side-by-side load benchmark: backend direct vs nginx vs the gateway,
# scenarios (a)–(d); writes the results section of BENCHMARKS.md.
# BENCHFLAGS, e.g. "-duration 10s -reps 5".
bench:
	scripts/bench.sh $(BENCHFLAGS)

# Regenerates the chart's bundled routes.yaml and profiles from the
# repository's (the chart test fails while they differ).
chart-files:
	scripts/chart-files.sh

# Each target: package, name, executions in `make test` (a few seconds each
# here; FuzzParseJSON is slow under coverage instrumentation).
FUZZ_TARGETS := \
	./validation:FuzzPrescriptionID:50000 \
	./validation:FuzzParseJSON:2000 \
	./validation:FuzzFastPathAgrees:20000 \
	./validation/jsontree:FuzzAgreesWithEncodingJSON:100000 \
	./validation/jsontree:FuzzAppendString:100000 \
	./validation/fhirxml:FuzzToJSON:20000 \
	./validation/fhirxml:FuzzTreeAgrees:20000 \
	./validation/fhirxml:FuzzScanAgrees:50000 \
	./validation/fhirxml:FuzzHandChecks:100000 \
	./validation/fhirxml:FuzzSimpleURIParses:100000 \
	./validation/profile:FuzzValidate:20000 \
	./validation/profile:FuzzAnyValueAtAgrees:50000 \
	./validation/fhirpathlite:FuzzHolds:20000 \
	./config:FuzzParse:30000 \
	./gateway/negotiate:FuzzNegotiate:200000 \
	./template:FuzzParse:200000 \
	./gateway/backend:FuzzField:100000 \
	./gateway/backend:FuzzEncodeJSON:50000 \
	./gateway/backend:FuzzEncodeForm:20000 \
	./gateway/pipeline:FuzzParseToken:100000 \
	./gateway:FuzzNormalisePath:20000 \
	./gateway/audit:FuzzFlatRecordAgrees:10000 \
	./gateway/logline:FuzzLineAgrees:100000 \
	./validation:FuzzPrimitiveChecksAgree:100000

# Long fuzzing: each target for FUZZTIME.
FUZZTIME ?= 60s
fuzz:
	BUDGET=$(FUZZTIME) FUZZ_TARGETS="$(FUZZ_TARGETS)" scripts/fuzz.sh

clean:
	rm -rf $(BIN)
