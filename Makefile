# Every target sets up what it needs: a fresh clone runs `make test` or `make run` as is.
# What is installed is what uv.lock says, nothing newer: `make lock` after editing pyproject.toml,
# `make upgrade` to move every package to its newest allowed release (then the whole suite runs).
PYTHON ?= python3
UV_VERSION := 0.13.10
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
GENERATED := apiparticulier/.generated
PROTOS := $(shell find protos -name '*.proto')
# The console's front-end packages (the DSFR, axe-core), exactly as console/assets/package-lock.json says.
ASSETS := console/assets/node_modules/.installed
# The browser of the console's tests: Debian's, never one Playwright downloads.
CHROMIUM := /usr/bin/chromium
# pytest-xdist workers: the tests mostly wait on their servers, so more workers than cores pay.
TEST_WORKERS ?= 4
# The tests start hundreds of Python processes (CLIs, gateways, workers): without their bytecode
# cached, each compiles every module it imports again (about 3 s of CPU for the admin CLI).
unexport PYTHONDONTWRITEBYTECODE
# The mark of the run's audits (tests/conftest.py).
AUDIT := runs_last
# The console's browser tests: one process beside the parallel run, with one stack and one
# Chromium of its own (tests/console/conftest.py), rather than one per worker.
BROWSER := browser
# Tests that bound a wait in wall time or race other processes: run one at a time once the
# parallel run is over, where no other test takes the cores they measure.
TIMING := timing

.PHONY: install lock lock-check upgrade protos lint buf-lint test screenshots run bench profile clean

install: $(INSTALLED) $(ASSETS)

# uv itself, pinned, in a venv of its own: the one tool installed from outside the lock.
$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# The runtime set and the dev and devstack groups, exactly as locked; the project itself editable.
$(INSTALLED): pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

$(ASSETS): console/assets/package.json console/assets/package-lock.json
	cd console/assets && npm ci --ignore-scripts --no-audit --no-fund
	@touch $@

$(CHROMIUM):
	apt-get install -y chromium || (apt-get update && apt-get install -y chromium)

lock: | $(UV)
	$(UV) lock

# Fails when uv.lock does not match pyproject.toml (run by .ci/run).
lock-check: | $(UV)
	$(UV) lock --check

upgrade: | $(UV)
	$(UV) lock --upgrade
	$(MAKE) test

protos: $(GENERATED)

$(GENERATED): $(INSTALLED) $(PROTOS) scripts/gen_protos.py
	$(BIN)/python scripts/gen_protos.py
	@touch $@

buf-lint: $(INSTALLED)
	cd protos && ../$(BIN)/buf lint

lint: lock-check $(GENERATED) buf-lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

# The suite on TEST_WORKERS processes (each starts its own servers on port 0), which keep every
# core busy; then the tests bound in wall time, one at a time, and beside them the browser tests
# (the former mostly wait, the latter need a core at times); then the audit of what every one of
# them logged (tests/test_personal_data.py), which must come after them all.
test: lint $(ASSETS) $(CHROMIUM)
	@rm -rf .run/test-logs && mkdir -p .run/test-logs
	TEST_LOG_DIR=.run/test-logs $(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal \
		-m 'not $(AUDIT) and not $(BROWSER) and not $(TIMING)'
	TEST_LOG_DIR=.run/test-logs $(BIN)/pytest -n 0 -p no:cacheprovider -m '$(BROWSER) and not $(AUDIT)' \
		> .run/browser-tests.out 2>&1 & browser=$$!; \
	TEST_LOG_DIR=.run/test-logs $(BIN)/pytest -n 0 -p no:cacheprovider -m '$(TIMING) and not $(AUDIT)'; \
	status=$$?; wait $$browser; browser_status=$$?; cat .run/browser-tests.out; \
	test $$status -eq 0 && test $$browser_status -eq 0
	TEST_LOG_DIR=.run/test-logs $(BIN)/pytest -m $(AUDIT)
	@# A shutdown step that overran its bound is left behind and logged with where every task waited.
	@! grep -h '_overdue' .run/test-logs/*.log || echo "(above: shutdown steps that overran, from the tests' logs)"

# The console's pages as the README shows them: the browser tests, writing into docs/console/.
screenshots: $(GENERATED) $(ASSETS) $(CHROMIUM)
	CONSOLE_SCREENSHOTS=docs/console $(BIN)/pytest -n 0 -p no:cacheprovider -m '$(BROWSER)'

run: $(GENERATED) $(ASSETS)
	$(BIN)/python -m devstack

# Direct, pass-through and gateway side by side, on this machine, in one run (issue 6).
bench: $(GENERATED)
	$(BIN)/python -m bench

# Where the gateway's CPU goes under the benchmark's load: py-spy's samples, in µs a call (issue 16).
profile: $(GENERATED)
	$(BIN)/python -m bench.profile

clean:
	rm -rf $(VENV) $(TOOLS) apiparticulier .mypy_cache .ruff_cache .pytest_cache console/assets/node_modules
