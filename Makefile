# LADD Studio: `make app` runs the dashboard, `make test` runs lint and the test suite.
# Both create .venv and install requirements.txt when it is missing or stale.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8501

.PHONY: app test lint format docs wheel-check bench browser-deps clean

$(STAMP): requirements.txt requirements-upstream.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --upgrade --target $(VENV)/upstream -r requirements-upstream.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

app: $(STAMP)
	$(VENV)/bin/ladd app --port $(PORT)

# Debian's Chromium drives the browser test; without it that test skips with a reason.
browser-deps:
	@if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian chromium for the browser test"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
			|| echo "warning: could not install chromium; the browser test will skip"; \
	fi

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The API reference and the guide, warnings as errors (the site goes to ./site, not committed).
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

# The wheel and sdist build; the wheel installs into a fresh venv without the app's or Ray's
# packages and runs `import ladd`, the guide's plain loop and `ladd --help` there.
wheel-check: $(STAMP)
	$(PY) scripts/wheel_check.py

test: $(STAMP) browser-deps lint docs wheel-check
	$(PY) -m pytest --durations=25 $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m bench.deploy_speed --tiny

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache site
