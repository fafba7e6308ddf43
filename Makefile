# `make demo` and `make test` each create .venv when missing and install into it exactly the
# versions in uv.lock (marginopt itself editable, with its test, service, distributed, plots, venues
# and history-server extras), then run the demo case or the whole test suite (`make test` also installs
# Debian's chromium for the browser test and postgresql for the run history's server tests). uv,
# pinned here, is installed once into .tools/ by the interpreter's own pip; it resolves and installs
# 10-20x faster than pip (README: set-up times).
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
CHROMIUM := /usr/bin/chromium
UV_VERSION := 0.13.9
UV := .tools/bin/uv
EXTRAS := --extra test --extra service --extra distributed --extra plots --extra venues --extra history-server
LATEST := .venv-latest

# uv takes the interpreter named above and never downloads one of its own.
export UV_PYTHON_DOWNLOADS := never
# Byte-compile at install, as pip did: the first run of each command then does not compile ~3,000 modules.
export UV_COMPILE_BYTECODE := 1

.PHONY: demo test bench upgrade test-latest clean postgresql

$(UV):
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --target .tools uv==$(UV_VERSION)

# --locked: refuse to install if pyproject.toml has moved away from uv.lock (run `make upgrade`).
$(STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --python $(PYTHON) $(EXTRAS)
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/marginopt demo

test: $(STAMP) $(CHROMIUM) postgresql
	$(BIN)/python -m pytest

# Debian's chromium for the desk page's browser test (Playwright drives it; nothing is
# downloaded from a browser vendor). Needs root and the Debian mirror; where either is
# missing the browser test says so and skips.
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null) \
		|| echo "make: could not install Debian's chromium; the browser test will skip"; \
	else echo "make: not root or no apt-get: Debian's chromium not installed; the browser test will skip"; fi

# Debian's postgresql for the run history's server tests (tests/postgres_server.py starts a server of its
# own on a temporary folder; the system's cluster is not used). Same rules as chromium: root and apt, else
# those tests say so and skip.
postgresql:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null) \
		|| echo "make: could not install Debian's postgresql; the PostgreSQL history tests will skip"; \
	else echo "make: not root or no apt-get: Debian's postgresql not installed; the PostgreSQL history tests will skip"; fi

# Moving to newer releases: re-resolve uv.lock to the newest ones, install them, run the suite.
# The diff of uv.lock is the change to review and commit.
upgrade: | $(UV)
	$(UV) lock --upgrade
	$(UV) sync --locked --python $(PYTHON) $(EXTRAS)
	touch $(STAMP)
	$(MAKE) test

# The newest releases of the day in a separate environment (uv.lock untouched), then the suite:
# tells at once whether a new release breaks something. Not part of CI.
test-latest: $(CHROMIUM) postgresql | $(UV)
	$(UV) venv --allow-existing --python $(PYTHON) $(LATEST)
	$(UV) pip install --python $(LATEST)/bin/python --upgrade --reinstall-package marginopt -e '.[test,service,distributed,plots,venues,history-server]'
	$(LATEST)/bin/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/scenarios.py
	$(BIN)/python benchmarks/optimize.py

clean:
	rm -rf $(VENV) $(LATEST) .tools build *.egg-info .pytest_cache .hypothesis
