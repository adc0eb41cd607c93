# The two commands of the README, and a few for development.
PYTHON ?= python3
# jupyter refuses to run as root without this flag (containers, CI machines).
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: demo test test-floors lint bench

demo:  ## install the project with JupyterLab, then start it on the demo notebook
	$(PYTHON) -m pip install -e ".[lab]"
	jupyter lab $(ROOT_FLAG) --ServerApp.root_dir=demo demo/welcome.ipynb

test:  ## install the test dependencies, then the linters, unit, server and browser tests
	npm ci --prefix labextension --no-audit --no-fund
	$(PYTHON) -m pip install -e ".[test]"
	npm ci --prefix tests/js --no-audit --no-fund
	npm run lint --prefix labextension
	npm test --prefix labextension
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m pytest
	CRDTSYNC_E2E_INSTALLED=1 npm run test:e2e --prefix labextension
	CRDTSYNC_E2E_INSTALLED=1 npm run browser-check --prefix labextension
	$(MAKE) test-floors

# The oldest versions the code is tested with (the floors in pyproject.toml), in a venv of
# their own, on a few test files. Warnings of old dependencies against new ones (jsonschema,
# jupyter_events) are not errors here: what is tested is that our code works on them.
# The stuck-peer flood test (20 MB through one room) is a load test: on pycrdt 0.12 it does
# not finish within its 30 s on a busy 2-core machine, so it runs on current versions only.
FLOORS := jupyter_server==2.13.0 jupyter-ydoc==3.4.0 pycrdt==0.12.49 nbformat==5.9.0 tornado==6.4
FLOORS_VENV ?= .venv-floors
FLOORS_TESTS := tests/test_content_guard.py tests/test_writeback.py tests/test_sync.py \
	tests/test_rooms.py tests/test_writer_resilience.py
test-floors:  ## the Python tests that matter most, against the dependency floors
	$(PYTHON) -m venv $(FLOORS_VENV)
	$(FLOORS_VENV)/bin/pip install -q $(FLOORS) pytest "pytest-jupyter[server]>=0.10" \
		pytest-timeout "hypothesis>=6.100" ipykernel
	PYTHONPATH=$(CURDIR) $(FLOORS_VENV)/bin/python -m pytest -p no:cacheprovider \
		-W "ignore::DeprecationWarning" \
		-W "ignore::jupyter_events.utils.JupyterEventsVersionWarning" \
		-k "not never_reads" $(FLOORS_TESTS)

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

bench:  ## the benchmarks of docs/performance.md
	$(PYTHON) benchmarks/bench_versus.py
	$(PYTHON) benchmarks/bench_rooms.py
	$(PYTHON) benchmarks/bench_kernel.py
