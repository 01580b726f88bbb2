# The two commands a new user needs: `make demo` and `make test`. Both create .venv themselves.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo dev test lint typecheck template unit bench clean

# The SAM CLI lives in a virtualenv of its own: its pins (boto3, pydantic) clash with ours.
SAM_CLI_VERSION := 1.170.0
SAM_VENV := .venv-sam
SAM_STAMP := $(SAM_VENV)/.installed-$(SAM_CLI_VERSION)
# `sam validate` wants a region and credentials, though it calls nothing.
SAM_OFFLINE := AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=offline AWS_SECRET_ACCESS_KEY=offline \
	SAM_CLI_TELEMETRY=0

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

$(SAM_STAMP):
	@test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	@$(SAM_VENV)/bin/python -m pip install -q --disable-pip-version-check 'aws-sam-cli==$(SAM_CLI_VERSION)'
	@touch $(SAM_STAMP)

# The order example through the local stack (template.yaml, no Docker, no account): the
# approval is decided through its signed link over HTTP; virtual time skips the hour's wait.
demo: $(STAMP)
	$(BIN)/stepwell run order-fulfilment --input @statemachines/examples/order-fulfilment.json --virtual-time --auto-approve --timeline

# The whole stack of template.yaml on http://127.0.0.1:$(PORT) until Ctrl-C (make dev PORT=3001).
PORT ?= 3000
dev: $(STAMP)
	$(BIN)/stepwell dev --port $(PORT)

test: $(STAMP) lint typecheck template
	$(BIN)/stepwell validate statemachines/
	$(BIN)/python -m pytest -n 2 tests

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)
	$(BIN)/mypy

# Offline, every template a user deploys: the engine alone, this repository's (which nests it),
# and the two projects `stepwell init` writes (the engine nested; an engine stack's exports
# imported): cfn-lint, `sam validate --lint`, and cfn-lint again on what the SAM transform makes
# of each (plain CloudFormation: dependency cycles, the generated roles).
ENGINE_TEMPLATE := shared/stepwell/stack/template.yaml
template: $(STAMP) $(SAM_STAMP)
	@set -e; scratch=$$(mktemp -d); trap 'rm -rf "$$scratch"' EXIT; \
	$(BIN)/stepwell init "$$scratch/nested-app" > /dev/null; \
	$(BIN)/stepwell init "$$scratch/shared-app" --engine-stack stepwell-prod > /dev/null; \
	for t in $(ENGINE_TEMPLATE) template.yaml "$$scratch/nested-app/template.yaml" \
			"$$scratch/shared-app/template.yaml"; do \
		echo "$$t"; \
		$(BIN)/cfn-lint "$$t"; \
		$(SAM_OFFLINE) $(SAM_VENV)/bin/sam validate --lint --template-file "$$t"; \
		$(SAM_VENV)/bin/python tests/helpers/sam_translate.py "$$t" > "$$scratch/translated.json"; \
		$(BIN)/cfn-lint "$$scratch/translated.json"; \
	done

# Engine, workloads W1-W5 and their code-first twins (W1c, W2c) through the local stack, storage
# floor, peers: prints the tables and writes benchmarks/results.json (docs/performance.md
# explains the figures).
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) $(SAM_VENV) build .pytest_cache .mypy_cache .ruff_cache
