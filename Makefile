# `make run` and `make test` work on a fresh machine with only python3.11 and make.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# REVAL_HOME defaults to ./.reval; `make ui` points DAGSTER_HOME at $REVAL_HOME/dagster (see dagster_home.py).

.PHONY: install run test lint ui clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	PIP_CONSTRAINT=$(CURDIR)/constraints.txt $(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: install
	$(BIN)/reval sync --reason "make run"
	$(BIN)/reval status

test: install
	$(BIN)/ruff check .
	$(BIN)/pytest

# The code is laid out by hand at 120 columns, not by `ruff format`, so lint is `ruff check` alone.
lint: install
	$(BIN)/ruff check .

# `exec` and reval_assets.ui: the recipe's shell becomes dagster dev, with SIGINT and SIGTERM restored, so the
# SIGTERM make forwards to its recipe stops it (and its webserver and daemon), with or without a terminal.
# `make ui UI_PORT=3001` serves on another port.
UI_PORT ?= 3000
ui: install
	umask 077 && DAGSTER_HOME="$$($(BIN)/python -m reval_assets.dagster_home)" exec $(BIN)/python -m reval_assets.ui -w workspace.yaml -h 127.0.0.1 -p $(UI_PORT)

clean:
	rm -rf $(VENV) .reval

# The benchmark: `make bench` (small, minutes) and `make bench-full` (national scale); `make bench-profile`
# writes the call tree of one `reval sync` (PROFILE_DOCTORS, 100,000 by default) to bench/profile_hee.txt.
# Installs the optional `bench` group (peers: dlt, deltalake, pyiceberg; pyinstrument).
.PHONY: bench bench-full bench-profile
BENCH_STAMP := $(VENV)/.bench-stamp

$(BENCH_STAMP): $(STAMP) pyproject.toml constraints.txt
	PIP_CONSTRAINT=$(CURDIR)/constraints.txt $(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench --profile small

bench-full: $(BENCH_STAMP)
	$(BIN)/python -m bench --profile full

PROFILE_DOCTORS ?= 100000
PROFILE_OUT ?= bench/profile_hee.txt
bench-profile: $(BENCH_STAMP)
	home=$$(mktemp -d) && trap 'rm -rf "$$home"' EXIT && \
	env REVAL_ENV=dev REVAL_HOME="$$home" DAGSTER_HOME="$$home/dagster" REVAL_DOCTORS=$(PROFILE_DOCTORS) \
	    REVAL_LIVE_URL="sqlite:///$$home/live.db" \
	    $(BIN)/pyinstrument --interval 0.001 -r text -o $(PROFILE_OUT) $(BIN)/reval sync --reason profile
