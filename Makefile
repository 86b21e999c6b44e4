# Heartwood — build, run and test.
#
#   make run    build the agent, start local Docker, Consul and Elasticsearch
#               if they are not running, and run the agent against them
#   make test   provision the real services, then run the unit tests (-race),
#               the integration tests against them and the cluster tests
#   make cluster-up NODES=3 / cluster-deploy / test-cluster / cluster-down
#               a Swarm of N nodes on this machine (stack/cluster/README.md)

SHELL     := /bin/bash
GO        ?= go
# The version: an exact release tag when HEAD has one, else the VERSION file.
VERSION   ?= $(shell git describe --tags --exact-match 2>/dev/null || cat VERSION 2>/dev/null || echo dev)
REVISION  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -s -w -X main.version=$(VERSION) -X main.revision=$(REVISION)
BIN       ?= bin/heartwood
RUN_DIR   ?= $(CURDIR)/.run
SERVICES  := stack/dev/services.sh
# Integration tests share one Docker engine, Consul and Elasticsearch, so
# packages run one at a time.
INTEGRATION_FLAGS ?= -race -count=1 -tags integration -p 1 -timeout 60m
FUZZTIME  ?= 15s

.PHONY: cluster-up cluster-down cluster-deploy cluster-deploy-agent test-cluster
.PHONY: all build run services services-down test test-unit test-integration fuzz bench vet fmt-check image clean \
	profile-registrar profile-shipper profile-watchman \
	print-version stack-images stack-up stack-down stack-status stack-pytest

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/heartwood

services:
	$(SERVICES) up

services-down:
	$(SERVICES) down

run: build services
	@mkdir -p $(RUN_DIR)/data
	@echo "docker:        unix:///var/run/docker.sock"
	@echo "consul:        http://127.0.0.1:8500  (UI and API)"
	@echo "elasticsearch: http://127.0.0.1:9200"
	@echo "heartwood api: http://127.0.0.1:9321  (/metrics /healthz /readyz /v1/status /v1/containers)"
	./bin/heartwood run --data-dir $(RUN_DIR)/data --docker-host unix:///var/run/docker.sock \
		--consul-addr 127.0.0.1:8500 --es-url http://127.0.0.1:9200 --listen 127.0.0.1:9321

test: vet services test-unit test-integration test-cluster

test-unit:
	$(GO) test -race -count=1 ./...

# stack/cluster makes a Swarm of its own: make test-cluster runs it.
test-integration:
	$(GO) test $(INTEGRATION_FLAGS) -run 'Integration' $$($(GO) list ./... | grep -v /stack/cluster)

vet: fmt-check
	$(GO) vet ./...
	$(GO) vet -tags integration ./...
	$(GO) vet -tags bench ./bench/...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# Short runs of every fuzz target (go test -fuzz takes one target at a time).
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

# Go micro-benchmarks, BENCHTIME each; the end-to-end harnesses in bench/
# are run one by one as bench/README.md says.
BENCHTIME ?= 200ms
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...

# A CPU profile of the real agent under load: make profile-registrar,
# profile-shipper or profile-watchman (bench/profile/profile.sh; bench/README.md).
PROFILE_SECONDS ?= 30
profile-registrar profile-shipper profile-watchman: profile-%:
	bench/profile/profile.sh $* $(PROFILE_SECONDS) $(PROFILE_CONTAINERS)

# The agent's container image, FROM scratch (built locally; no registry),
# tagged heartwood:$(VERSION): the tag the stack files deploy
# (HEARTWOOD_VERSION=$$(make -s print-version)).
image: build
	cp /etc/ssl/certs/ca-certificates.crt bin/ca-certificates.crt
	docker build -q -t heartwood:$(VERSION) --build-arg CA_BUNDLE=bin/ca-certificates.crt -f stack/Dockerfile .

print-version:
	@echo $(VERSION)

# The training platform on this machine's one-node Swarm (stack/README.md).
# STACK_DOWN_VOLUMES=1 make stack-down also deletes its data volumes.
STACK_SH := stack/local/stack.sh

stack-images:
	$(STACK_SH) images

stack-up:
	$(STACK_SH) up

stack-down:
	$(STACK_SH) down

stack-status:
	$(STACK_SH) status

# The platform's Python unit tests (simulator physics, trainer, web app).
stack-pytest:
	cd stack/simulator && python3 -m unittest -q
	cd stack/trainer && python3 -m unittest -q
	cd stack/web && python3 -m unittest -q

clean:
	rm -rf bin $(RUN_DIR)

# ---- a Swarm of NODES nodes on this machine (stack/cluster/README.md)
NODES    ?= 3
CLUSTER  := stack/cluster/cluster.sh

# services: builds the Consul binary and fetches Elasticsearch on first run.
cluster-up: services
	$(CLUSTER) up $(NODES)

# The platform's local variant across the nodes (builds its images first).
cluster-deploy: stack-images
	$(MAKE) image VERSION=cluster REVISION=cluster
	$(CLUSTER) deploy-platform

# Heartwood alone with small stand-in services, as the cluster tests use it.
cluster-deploy-agent:
	$(MAKE) image VERSION=cluster REVISION=cluster
	$(CLUSTER) deploy

cluster-down:
	$(CLUSTER) down

# The cluster tests make their own cluster and remove it, even on failure.
test-cluster: services
	$(MAKE) image VERSION=cluster REVISION=cluster
	@mkdir -p $(RUN_DIR)
	$(GO) test -race -count=1 -tags integration -timeout 25m -v -run 'TestIntegrationCluster' ./stack/cluster/ 2>&1 | tee $(RUN_DIR)/test-cluster.log; exit $${PIPESTATUS[0]}
