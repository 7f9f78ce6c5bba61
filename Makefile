# opportunity-research: the documented entry points. `make` alone lists them.
# Two commands set everything up on a machine with Python 3.11, pip and venv:
#   make reports   # virtual environment, demo data, processed tables, every report
#   make test      # the whole test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LAB_STAMP := $(VENV)/.lab-installed
JOBS ?= 2
DEMO := data/raw/.demo-stamp

.DEFAULT_GOAL := help
.PHONY: help venv data process reports test test-slow lint bench docs lab lock lock-lab clean clean-reports browser screenshots axe

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $(STAMP)

venv: $(STAMP) ## create .venv and install the pinned dependencies (requirements.lock)

$(DEMO): $(STAMP) $(wildcard opportunity_research/synth/*.py) opportunity_research/intake/contract.py
	$(BIN)/opportunity-research synthesize
	@touch $(DEMO)

data: $(DEMO) ## write the five synthetic demo districts into data/raw/

process: data ## validate and process every district in data/raw/ into data/processed/
	$(BIN)/opportunity-research process --all

AXE_VERSION := 4.14.1
AXE := .axe/node_modules/axe-core/axe.min.js

$(AXE):
	npm install --no-save --no-audit --no-fund --prefix .axe axe-core@$(AXE_VERSION)

axe: $(AXE) ## install axe-core (npm, pinned) into .axe/ for the accessibility checks of the browser tests

browser: venv $(AXE) ## find the Chromium that prints the PDFs and runs the browser tests (installs Debian's chromium as root); axe-core
	$(BIN)/python -m opportunity_research.report.browser --ensure

# `run` validates and processes each district itself, so one broken district does not stop the others: every
# healthy district is rebuilt, the broken one keeps its last good report (marked stale), and make exits non-zero
# naming it.
#
# Incremental: a district's report (its reports/<id>/.publish.json, written when it is published) depends on the
# district's raw files, the pseudonym key, the package's code, templates and resources, and the district notebook.
# make decides which reports are out of date; the out-of-date districts then run as ONE batch (one run id, one
# Dask cluster of JOBS workers), followed by the cross-district report and the index. A district that fails keeps
# its old .publish.json (or has none), so the next `make reports` tries it again; nothing else is rebuilt.
# The sub-make reads data/raw/ after `data` has written the demo districts.
reports: data browser ## build the district reports (HTML + PDF) that are out of date, the cross-district report and reports/index.html
	@$(MAKE) --no-print-directory reports-build

REPORT_IDS = $(sort $(patsubst data/raw/%/,%,$(dir $(wildcard data/raw/*/students.csv data/raw/*/crosswalk.yaml data/raw/*/level_counts.csv))))
REPORT_CODE = $(shell find -L opportunity_research -type f \( -name '*.py' -o -name '*.j2' -o -name '*.css' \
  -o -name '*.csv' -o -name '*.json' -o -name '*.yaml' \) -not -path '*/__pycache__/*' 2>/dev/null) pyproject.toml
REPORT_TODO := .make-reports.todo

.SECONDEXPANSION:
.PHONY: reports-build
reports-build: $$(foreach d,$$(REPORT_IDS),reports/$$(d)/.publish.json)
	@todo="$$(sort -u $(REPORT_TODO) 2>/dev/null)"; rm -f $(REPORT_TODO); \
	if [ -n "$$todo" ]; then echo "out of date: "$$todo; set -- --districts $$todo; \
	elif [ ! -e reports/index.html ] || [ -n "$$(find -L notebooks/cross_district.ipynb opportunity_research \
	  -newer reports/index.html -type f -not -path '*/__pycache__/*' -print -quit)" ]; then set -- --cross-only; \
	else echo "reports are up to date"; exit 0; fi; \
	$(BIN)/opportunity-research run --jobs $(JOBS) "$$@"; status=$$?; echo "open reports/index.html"; exit $$status

# A district's recipe only records it: the districts found out of date run together, in reports-build's recipe.
reports/%/.publish.json: $$(wildcard data/raw/$$*/*) $$(wildcard data/pseudonym.key) $$(REPORT_CODE) notebooks/district_report.ipynb notebooks/level_counts_report.ipynb $(STAMP)
	@echo $* >> $(REPORT_TODO)

NBVAL := --nbval-lax notebooks/district_report.ipynb notebooks/cross_district.ipynb --sanitize-with notebooks/nbval_sanitize.cfg

# One pytest run on JOBS workers: the package's doctests beside the tests (one file per worker at a time), so the
# doctests no longer run alone on one core first. Files go to the workers in collection order, the files marked
# `long` first (tests/conftest.py), so that no long file is left to start last on one worker.
test: reports browser $(LAB_STAMP) ## run the whole test suite (lint, doctests, layer contract, unit, statistics against references, notebooks, batch, pages and JupyterLab in Chromium)
	$(BIN)/python -m ruff check opportunity_research tests benchmarks notebooks
	$(BIN)/python -m ruff format --check opportunity_research tests benchmarks
	$(BIN)/python -m pytest -n $(JOBS) --dist loadfile --no-loadscope-reorder --doctest-modules opportunity_research tests $(NBVAL)

test-slow: reports browser $(LAB_STAMP) ## run the slow simulations too (interval coverage over many seeds)
	$(BIN)/python -m pytest -n $(JOBS) --dist loadfile --no-loadscope-reorder -m "slow or not slow" tests $(NBVAL)

lint: venv ## ruff lint and format check (`ruff format opportunity_research tests benchmarks` fixes the format)
	$(BIN)/python -m ruff check opportunity_research tests benchmarks notebooks
	$(BIN)/python -m ruff format --check opportunity_research tests benchmarks

bench: process ## run every benchmark in quick mode
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b --quick || exit 1; done

docs: venv ## regenerate docs/data_contract.md from the contract
	$(BIN)/python -c "from opportunity_research.intake.contract_page import contract_markdown; open('docs/data_contract.md','w').write(contract_markdown())"

screenshots: reports ## regenerate docs/screenshots/ (first screen and a printed page of a report and scorecard)
	$(BIN)/python -m opportunity_research.report.browser --screenshots docs/screenshots --district demo_lakeside

# --no-deps: exactly the pinned set. JupyterLab's jsonschema[format-nongpl] would also bring rfc3987-syntax, whose
# import builds an IRI grammar (about 1 CPU-s) in every process that imports jsonschema through nbformat: the batch,
# each Dask worker, the test workers (python-jsonschema/jsonschema#1428). Nothing here checks the "iri" format, so
# the lock leaves it out (and lark, its parser), and an environment made before loses it.
$(LAB_STAMP): $(STAMP) requirements-lab.lock
	$(BIN)/python -m pip install --quiet --no-deps -r requirements.lock -r requirements-lab.lock
	$(BIN)/python -m pip uninstall --quiet --yes rfc3987-syntax lark 2>/dev/null || true
	@touch $(LAB_STAMP)

# JupyterLab rooted at the project folder, on your own working copies in notebooks/work/ (git-ignored, made from
# the templates once, never overwritten); the templates in notebooks/ are what the batch runs and cannot be saved
# from the lab. No browser is opened: open the printed URL. As root (containers) it adds --allow-root; it listens
# on 127.0.0.1 (0.0.0.0 in a container, behind the token); LAB_IP and LAB_PORT override.
lab: $(LAB_STAMP) ## open JupyterLab on your working copies in notebooks/work/ (pinned in requirements-lab.lock; run make process first)
	$(BIN)/python -m opportunity_research.report.workbench

lock-lab: ## re-pin requirements-lab.lock: JupyterLab on top of requirements.lock (needs the registry)
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv && .lockenv/bin/pip install --quiet -r requirements.lock \
	  "jupyterlab>=4" && .lockenv/bin/pip freeze --exclude-editable > .lockenv/freeze.txt && $(PYTHON) -c \
	  "import re; n = lambda s: re.sub(r'[-_.]+', '-', s.split('==')[0]).lower(); \
	  main = {n(x) for x in open('requirements.lock') if '==' in x} | {'rfc3987-syntax', 'lark'}; \
	  extra = sorted((x.strip() for x in open('.lockenv/freeze.txt') if '==' in x and n(x) not in main), key=str.lower); \
	  open('requirements-lab.lock', 'w').write('# JupyterLab for make lab, pinned; installed on top of requirements.lock, ' \
	  'kept out of the batch environment. Regenerate with make lock-lab (it leaves out rfc3987-syntax and lark: see the Makefile).\\n' + '\\n'.join(extra) + '\\n')" && rm -rf .lockenv

lock: ## re-pin requirements.lock from a fresh environment (needs the registry)
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv && .lockenv/bin/pip install --quiet ".[test,dev]" && \
	  .lockenv/bin/pip freeze --exclude-editable | grep -v '^opportunity-research' > requirements.lock && rm -rf .lockenv

clean-reports: ## delete generated reports
	rm -rf reports/*/ reports/index.html reports/manifest.json

clean: clean-reports ## delete the environment, demo data and processed tables (never other raw data)
	rm -rf $(VENV) data/processed/*/ data/raw/demo_*/ $(DEMO)
