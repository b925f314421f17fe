# The two commands a newcomer needs: `make dev` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test lint install bench record-histories clean web client browser

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

dev: $(STAMP)
	$(BIN)/python -m local.stack

# The AI SDK's own stream parser in each current major, for the compatibility test (skipped where
# node is missing).
AI_SDK := tests/ai_sdk/node_modules/.package-lock.json
$(AI_SDK): tests/ai_sdk/package-lock.json
	if command -v npm >/dev/null; then npm ci --prefix tests/ai_sdk --silent --no-audit --no-fund; fi

# The playground's build tools and the TypeScript client's generator, pinned by web/package-lock.json.
WEB := web/node_modules/.package-lock.json
$(WEB): web/package-lock.json
	if command -v npm >/dev/null; then npm ci --prefix web --silent --no-audit --no-fund; fi

# The playground's bundle, api/static/playground/app.js (checked in, so `make dev` needs no Node.js;
# a test fails when it differs from what web/src builds): run after changing web/src.
web: $(WEB)
	npm run --prefix web --silent build

# The published OpenAPI document and the TypeScript client's types generated from it (both checked
# in; a test fails when they are out of date): run after changing a route or a model it answers.
client: $(STAMP) $(WEB)
	$(BIN)/python -m api.published_spec > web/client/openapi.json
	npm run --prefix web --silent client

# Debian's chromium, which the playground's browser test drives through Playwright (whose own browser
# download cannot reach its servers everywhere): installed when missing, as root with apt-get;
# elsewhere the test is skipped and says why.
browser:
	@if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's chromium for the browser test"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -qq chromium >/dev/null 2>&1 || \
	      { apt-get update -qq >/dev/null && apt-get install -y -qq chromium >/dev/null; } || \
	      echo "chromium could not be installed: the browser test will be skipped"; \
	  else \
	    echo "chromium is missing and cannot be installed here (not root, or no apt-get): the browser test will be skipped"; \
	  fi; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check .

test: $(STAMP) $(AI_SDK) $(WEB) browser lint
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
