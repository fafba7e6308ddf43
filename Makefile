# `make demo` and `make test` each create .venv when missing, install marginopt
# with its test, service, distributed and plots extras, then run the demo case or
# the whole test suite (`make test` also installs Debian's chromium for the browser test).
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
CHROMIUM := /usr/bin/chromium

.PHONY: demo test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,service,distributed,plots]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/marginopt demo

test: $(STAMP) $(CHROMIUM)
	$(BIN)/python -m pytest

# Debian's chromium for the desk page's browser test (Playwright drives it; nothing is
# downloaded from a browser vendor). Needs root and the Debian mirror; where either is
# missing the browser test says so and skips.
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null) \
		|| echo "make: could not install Debian's chromium; the browser test will skip"; \
	else echo "make: not root or no apt-get: Debian's chromium not installed; the browser test will skip"; fi

bench: $(STAMP)
	$(BIN)/python benchmarks/scenarios.py
	$(BIN)/python benchmarks/optimize.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
