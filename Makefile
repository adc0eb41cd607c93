# The two commands of the README, and a few for development.
PYTHON ?= python3
# jupyter refuses to run as root without this flag (containers, CI machines).
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: demo test lint bench

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

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

bench:  ## the benchmarks of docs/performance.md
	$(PYTHON) benchmarks/bench_rooms.py
	$(PYTHON) benchmarks/bench_kernel.py
