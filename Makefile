# The front door. Every target installs what it needs; see README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help

ENV ?= local
export ENV

.PHONY: help install build build-if-needed services services-down services-status migrate run seed watch test test-unit test-integration test-faults lint bench clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

install: node_modules/.installed ## npm ci (only when package-lock.json changed)

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

CLI := node dist/src/cli.js

migrate: services build ## create keyspace, tables, index, topics, schemas (idempotent)
	$(CLI) migrate

run: migrate ## start everything and run the API and the processor in the foreground
	$(CLI) run

seed: migrate ## seed a demo course batch (3,000 enrolments, some inactive)
	$(CLI) seed-demo

watch: build ## print sync events as they arrive on the output topic
	$(CLI) watch

lint: install ## eslint, prettier and the TypeScript compiler
	npx tsc -p tsconfig.json --noEmit
	npx eslint .
	npx prettier --check .

test-unit: install ## unit tests (no servers)
	npx jest --selectProjects unit

test-integration: services ## integration and end-to-end tests against the real servers
	npx jest --selectProjects integration

# The fault tests (test/faults) run the built CLI in child processes, one file at a time; the
# faults-servers project stops and starts Kafka and Cassandra, so it runs last and alone.
FAULT_RUNS = \
	npx jest --selectProjects faults --runInBand --json --outputFile=.run/jest-faults.json || status=1; \
	npx jest --selectProjects faults-servers --runInBand --json --outputFile=.run/jest-faults-servers.json || status=1;

# One closing line for every jest run above: "N passed, M failed"; a test file that could not run
# counts as one failure, and a run that left no results is named.
JEST_SUMMARY = node -e 'let p = 0, f = 0; const lost = []; \
	for (const file of process.argv.slice(1)) { \
	  try { const r = require(require("path").resolve(file)); \
	        p += r.numPassedTests; f += r.numFailedTests + r.numRuntimeErrorTestSuites; } \
	  catch { lost.push(file); } } \
	console.log(`$${p} passed, $${f} failed` + (lost.length ? ` (no results from $${lost.join(", ")})` : ""))'

test: install lint services ## everything CI runs: install, lint, start servers, unit + integration tests, then the fault tests
	@mkdir -p .run; rm -f .run/jest-results.json .run/jest-faults.json .run/jest-faults-servers.json
	status=0; \
	npx jest --selectProjects unit integration --json --outputFile=.run/jest-results.json || status=1; \
	$(FAULT_RUNS) \
	$(JEST_SUMMARY) .run/jest-results.json .run/jest-faults.json .run/jest-faults-servers.json; \
	exit $$status

test-faults: install services ## fault tests: kill -9, failover, SIGTERM, sparse scan, fatal config, poison input; then Kafka and Cassandra outages (stops those servers)
	@mkdir -p .run; rm -f .run/jest-faults.json .run/jest-faults-servers.json
	status=0; \
	$(FAULT_RUNS) \
	$(JEST_SUMMARY) .run/jest-faults.json .run/jest-faults-servers.json; \
	exit $$status

bench: build ## benchmarks; figures go to docs/benchmarks.md and docs/benchmarks.json
	bash bench/run.sh

clean: ## remove build output (servers and their data: `make services-down` / infra/services.sh clean)
	rm -rf dist
