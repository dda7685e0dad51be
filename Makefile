# fhirgate — the commands a newcomer needs:
#   make run    the gateway with its bundled legacy simulator, default routes.yaml
#   make test   every test (unit, config, end-to-end with real processes, short fuzz runs)
SHELL := /bin/bash
GO    ?= go
BIN   := bin

.PHONY: all build run test vet fmt-check fuzz clean

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

# Starts the Fachdienst simulator (:9101), waits for it, then the gateway
# (:8080, metrics on :9090). Ctrl-C stops both.
run: build
	@set -euo pipefail; \
	$(BIN)/legacysim fachdienst --listen 127.0.0.1:9101 & sim=$$!; \
	trap 'kill $$sim 2>/dev/null' EXIT INT TERM; \
	for i in $$(seq 1 50); do curl -sf -o /dev/null http://127.0.0.1:9101/demo/jwks.json && break; sleep 0.1; done; \
	$(BIN)/fhirgate serve --config routes.yaml

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi

# The whole suite: formatting, vet, every package's tests (the end-to-end
# tests build and start the real binaries), then each fuzz target briefly.
test: fmt-check vet
	$(GO) test -count=1 ./...
	$(MAKE) --no-print-directory fuzz FUZZTIME=10s

FUZZTIME ?= 60s
FUZZ_TARGETS := \
	./validation:FuzzPrescriptionID \
	./validation:FuzzParseJSON \
	./config:FuzzParse \
	./gateway/negotiate:FuzzNegotiate \
	./gateway/template:FuzzParse \
	./gateway/backend:FuzzField

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; name=$${t##*:}; \
	  echo "fuzz $$pkg $$name for $(FUZZTIME)"; \
	  $(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

clean:
	rm -rf $(BIN)
