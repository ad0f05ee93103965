# Every target sets up what it needs: a fresh clone runs `make test` or `make run` as is.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
GENERATED := apiparticulier/.generated
PROTOS := $(shell find protos -name '*.proto')

.PHONY: install protos lint buf-lint test run bench profile clean

install: $(INSTALLED)

# editable_mode=compat puts the repository root on sys.path, so the generated SDK
# (apiparticulier/, made after the install) imports like every other package.
$(INSTALLED): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' --config-settings editable_mode=compat
	@touch $@

protos: $(GENERATED)

$(GENERATED): $(INSTALLED) $(PROTOS) scripts/gen_protos.py
	$(BIN)/python scripts/gen_protos.py
	@touch $@

buf-lint: $(INSTALLED)
	cd protos && ../$(BIN)/buf lint

lint: $(GENERATED) buf-lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

test: lint
	$(BIN)/pytest

run: $(GENERATED)
	$(BIN)/python -m devstack

# Direct, pass-through and gateway side by side, on this machine, in one run (issue 6).
bench: $(GENERATED)
	$(BIN)/python -m bench

# Where the gateway's CPU goes under the benchmark's load: py-spy's samples, in µs a call (issue 16).
profile: $(GENERATED)
	$(BIN)/python -m bench.profile

clean:
	rm -rf $(VENV) apiparticulier .mypy_cache .ruff_cache .pytest_cache
