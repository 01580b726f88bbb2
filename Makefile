# The two commands a new user needs: `make demo` and `make test`. Both create .venv themselves.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo dev test lint typecheck template unit bench clean build-StepwellLayer

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

typecheck: $(STAMP)
	$(BIN)/mypy

# template.yaml, offline: cfn-lint, `sam validate --lint`, and cfn-lint again on what the SAM
# transform makes of it (plain CloudFormation: dependency cycles, the generated roles).
template: $(STAMP) $(SAM_STAMP)
	$(BIN)/cfn-lint template.yaml
	$(SAM_OFFLINE) $(SAM_VENV)/bin/sam validate --lint --template-file template.yaml
	@mkdir -p build
	$(SAM_VENV)/bin/python tests/helpers/sam_translate.py template.yaml > build/template.cfn.json
	$(BIN)/cfn-lint build/template.cfn.json

# Engine, workloads W1-W5 and their code-first twins (W1c, W2c) through the local stack, storage
# floor, peers: prints the tables and writes benchmarks/results.json (docs/performance.md
# explains the figures).
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

# `sam build` runs this for StepwellLayer (BuildMethod: makefile, ContentUri "."): the stepwell
# package and statemachines/ as Lambda sees them (/opt/python/stepwell, /opt/statemachines) and
# the package's dependencies for Lambda's Python on arm64, less those only the local stack and
# the CLI use (moto, rich).
LAYER_PYTHON := 3.12
build-StepwellLayer:
	mkdir -p "$(ARTIFACTS_DIR)/python"
	cp -R shared/stepwell "$(ARTIFACTS_DIR)/python/"
	cp -R statemachines "$(ARTIFACTS_DIR)/"
	find "$(ARTIFACTS_DIR)" -name __pycache__ -prune -exec rm -rf {} +
	$(PYTHON) -c 'import tomllib; deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]; print("\n".join(d for d in deps if not d.startswith(("moto", "rich"))))' > "$(ARTIFACTS_DIR)/requirements.txt"
	$(PYTHON) -m pip install -q --disable-pip-version-check --target "$(ARTIFACTS_DIR)/python" \
		--platform manylinux2014_aarch64 --implementation cp --python-version $(LAYER_PYTHON) \
		--only-binary=:all: --no-warn-conflicts --no-compile -r "$(ARTIFACTS_DIR)/requirements.txt"
	rm -rf "$(ARTIFACTS_DIR)/requirements.txt" "$(ARTIFACTS_DIR)/python/bin"

clean:
	rm -rf $(VENV) $(SAM_VENV) build .pytest_cache .mypy_cache .ruff_cache
