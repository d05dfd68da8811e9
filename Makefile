# Set-up and the two entry points. `make demo` runs the main job, `make test` the tests; each
# creates .venv and installs everything on first use (a fresh machine needs nothing else).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CONFIG ?= configs/demo.yaml
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup setup-dev demo test test-fast lint results clean

$(VENV)/.runtime: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip install --no-deps -e .
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install -r requirements-dev.txt
	@command -v chromium >/dev/null || { echo "installing Chromium for the report test (Debian packages)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends chromium chromium-driver; }
	@command -v pdftoppm >/dev/null || { echo "installing poppler-utils for the casework PDF test (Debian package)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends poppler-utils; }
	touch $@

setup: $(VENV)/.runtime
setup-dev: $(VENV)/.dev

demo: setup
	$(PY) run_pipeline.py --config $(CONFIG)

results: setup   # the results grid (docs/results.md); GRID=gpu on a GPU machine, SMOKE=1 for the tiny grid
	$(PY) run_experiments.py --config configs/results_uadfv.yaml $(if $(GRID),--grid $(GRID)) $(if $(SMOKE),--smoke)

test: setup-dev
	$(PY) -m pytest $(PYTEST_ARGS)

# unit tests only: no dataset, no trainings, no Chromium (markers in pyproject.toml); under 90 s
test-fast: setup-dev
	$(PY) -m pytest -m "not slow and not real_data and not chromium" $(PYTEST_ARGS)

lint: setup-dev
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) outputs
