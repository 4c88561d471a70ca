# LADD Studio: `make app` runs the dashboard, `make test` runs lint and the test suite.
# Both create .venv and install requirements.txt when it is missing or stale.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8501

.PHONY: app test lint format bench browser-deps clean

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
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

test: $(STAMP) browser-deps lint
	$(PY) -m pytest --durations=25 $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m bench.deploy_speed --tiny

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
