# The front door. Every target installs what it needs; see README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help

ENV ?= local
export ENV

.PHONY: help install build services services-down services-status migrate run seed watch test test-unit test-integration lint bench clean

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
