# The two commands a newcomer needs: `make dev` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test lint install bench record-histories clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

dev: $(STAMP)
	$(BIN)/python -m local.stack

# The AI SDK's own stream parser, for the compatibility test (skipped where node is missing).
AI_SDK := tests/ai_sdk/node_modules/.package-lock.json
$(AI_SDK): tests/ai_sdk/package-lock.json
	if command -v npm >/dev/null; then npm ci --prefix tests/ai_sdk --silent --no-audit --no-fund; fi

lint: $(STAMP)
	$(BIN)/ruff check .

test: $(STAMP) $(AI_SDK) lint
	$(BIN)/python -m pytest

# Re-records the workflow histories the replay test replays (tests/workflows/histories/).
record-histories: $(STAMP)
	RECORD_HISTORIES=1 $(BIN)/python -m pytest tests/integration/test_record_histories.py -q

# Benchmarks against a stack of their own on free loopback ports (about 14 minutes on 2 cores):
# tables in bench/results/latest.md, every figure in bench/results/<time>.json.
# Smaller: make bench ARGS=--quick; a subset: make bench ARGS='--only ttft,throughput'.
BENCH_STAMP := $(VENV)/.installed-bench
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	timeout 1800 $(BIN)/python -m bench $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
