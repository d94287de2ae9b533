# `make run` serves the demo zones on 127.0.0.1:5353; `make test` runs every test.
# Both install what they need on first use: the Debian packages listed in
# tools/debian-packages.txt (when missing), and a virtual environment in .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
# The C extensions (the native UDP fast path, the geo maps, the zone-line scanner) are
# rebuilt by the install when these change.
NATIVE := setup.py $(wildcard gslb/server/native/*.c gslb/server/native/*.h \
                              gslb/steering/native/*.c gslb/steering/native/*.h \
                              gslb/load/native/*.c gslb/load/native/*.h)

.PHONY: run test check bench clean debian-run debian-test debian-bench

debian-run:
	@tools/debian-deps run
debian-test:
	@tools/debian-deps run test
debian-bench:
	@tools/debian-deps run test bench

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Run dependencies only (`pip install .`); the test extra adds pytest, mypy and friends.
$(RUN_STAMP): pyproject.toml $(NATIVE) | $(VENV)/bin/python
	$(BIN)/pip install --quiet -e .
	touch $(RUN_STAMP)

$(TEST_STAMP): pyproject.toml $(NATIVE) | $(VENV)/bin/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(TEST_STAMP) $(RUN_STAMP)

# Zone files other projects wrote, for tests/interop/test_zone_corpus.py: the archives
# tests/interop/corpus/sources.tsv pins (an sdist from PyPI, upstream tarballs of Debian
# source packages), fetched once by tools/zone-corpus and checked against their SHA-256
# (tests/interop/corpus/README.md). The stamp is remade when the list changes.
ZONE_CORPUS := $(VENV)/zone-corpus/.complete
$(ZONE_CORPUS): tests/interop/corpus/sources.tsv tools/zone-corpus | $(VENV)/bin/python
	tools/zone-corpus $(VENV)/zone-corpus
	touch $@

run: debian-run $(RUN_STAMP)
	@echo "DNS on 127.0.0.1:5353; REST API on http://127.0.0.1:8080 (docs at /docs, web console at /ui/)."
	@echo "API token (shown once):  $(BIN)/gslb token create --zones zones --name $${USER:-admin} --role admin"
	$(BIN)/gslb serve --zones zones --listen 127.0.0.1:5353 --api 127.0.0.1:8080

check: debian-run $(RUN_STAMP)
	$(BIN)/gslb check --zones zones

# Most tests wait on real servers and timers, so three pytest-xdist workers fit two cores;
# a file's tests stay on one worker (they share its servers). TEST_JOBS=0 runs in-process.
# Then, one at a time: the container tests (marked `docker`: they build the image and run
# the compose stack, heavy on two cores) and the latency measurements (marked `alone`),
# each on an otherwise quiet machine.
TEST_JOBS ?= 3
test: debian-test $(TEST_STAMP) $(ZONE_CORPUS)
	$(BIN)/python -m pytest -q -n $(TEST_JOBS) --dist loadfile -m "not alone and not docker"
	$(BIN)/python -m pytest -q -m docker
	$(BIN)/python -m pytest -q -m alone

# Knot DNS and gslb under dnsperf on loopback; quick form:
# make bench BENCH_ARGS="--seconds 2 --runs 1 --skip-large"
bench: debian-bench $(TEST_STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
