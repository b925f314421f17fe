# The two commands a newcomer needs: `make dev` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test install bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

dev: $(STAMP)
	$(BIN)/python -m devstack

# The AI SDK's own stream parser, for the compatibility test (skipped where node is missing).
AI_SDK := tests/ai_sdk/node_modules/.package-lock.json
$(AI_SDK): tests/ai_sdk/package-lock.json
	if command -v npm >/dev/null; then npm ci --prefix tests/ai_sdk --silent --no-audit --no-fund; fi

test: $(STAMP) $(AI_SDK)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m bench.first_token

clean:
	rm -rf $(VENV) .pytest_cache
