# The two commands a new user needs: `make demo` and `make test`. Both create .venv themselves.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo dev test lint typecheck unit bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

# The order example through the local stack (template.yaml, no Docker, no account): the
# approval is decided through its signed link over HTTP; virtual time skips the hour's wait.
demo: $(STAMP)
	$(BIN)/stepwell run order-fulfilment --input @statemachines/examples/order.json --virtual-time --auto-approve --timeline

# The whole stack of template.yaml on http://127.0.0.1:3000 until Ctrl-C.
dev: $(STAMP)
	$(BIN)/stepwell dev

test: $(STAMP) lint typecheck
	$(BIN)/stepwell validate statemachines/
	$(BIN)/python -m pytest -n 2 tests

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/engine.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
