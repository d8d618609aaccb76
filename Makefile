# Local developer stack and test orchestration. `make help` lists the targets.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV       := .venv
VENV_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: help deps tools dev test e2e bench iac package deploy fmt lint clean-data

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

deps: tools $(VENV_STAMP) $(NODE_STAMP) ## install Java, npm packages and the Python venv when missing

tools:
	@scripts/ensure-tools.sh

$(VENV_STAMP): requirements-dev.txt tests/e2e/requirements.txt requirements-infra.txt | tools
	[ -x $(VENV)/bin/python ] || python3 -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt -r requirements-infra.txt
	touch $@

$(NODE_STAMP): package.json package-lock.json | tools
	npm ci --no-audit --no-fund
	touch $@

dev: deps ## DynamoDB Local (.data/) + table + admin + cargo lambda watch on PORT (default 9000)
	scripts/dev.sh

test: deps ## Rust tests + end-to-end suite (in-memory DynamoDB Local) + IaC checks
	scripts/test.sh

e2e: deps ## only the end-to-end suite (pytest tests/e2e through cargo lambda watch)
	scripts/e2e.sh

bench: deps ## init time of two release functions; DynamoDB calls and capacity per request, also at N users (default 10000); write -> SET latency
	scripts/bench-init.sh
	if [ -x scripts/bench-dynamodb.sh ]; then scripts/bench-dynamodb.sh; fi
	scripts/bench-faults.sh
	scripts/bench-scale.sh
	$(VENV)/bin/python scripts/bench-events.py "$${BENCH_EVENT_CHANGES:-20}"

iac: deps ## only the IaC checks: cfn-lint + tests/infra (routes, IAM, table vs the code)
	scripts/iac-check.sh

package: deps ## cargo lambda build --release --arm64 of every function into target/lambda/*/bootstrap.zip
	scripts/package.sh

deploy: deps ## sam build + sam deploy --guided (the SAM CLI goes into infra/.venv-sam)
	scripts/deploy.sh

fmt: ## format the Rust code
	cargo fmt --all

lint: ## rustfmt check + clippy with warnings as errors
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

clean-data: ## delete the make dev database and saved credentials (.data/)
	rm -rf .data
