# `make run` serves the demo zones on 127.0.0.1:5353; `make test` runs every test.
# Both create the virtual environment in .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test check bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/gslb serve --zones zones --listen 127.0.0.1:5353

check: $(STAMP)
	$(BIN)/gslb check --zones zones

test: $(STAMP)
	$(BIN)/python -m pytest -q

# Knot DNS and gslb under dnsperf on loopback; quick form:
# make bench BENCH_ARGS="--seconds 2 --runs 1 --skip-large"
bench: $(STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
