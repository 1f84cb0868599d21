# nncosmo: two commands for readers (`make book`, `make test`), a few more for developers.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
export NNCOSMO_PROFILE ?= quick
# Sphinx: warnings are errors, nitpicky cross-references, keep going to report all of them.
BOOK_FLAGS ?= -W -n --keep-going

.PHONY: venv book test unit check-tooling nbval nbval-refs claims-refs refs clean lock
# where the executed chapters record their claims (nncosmo_helpers.book.claim)
CLAIMS_DIR := $(CURDIR)/_build/claims

# The virtual environment, re-created when the dependency list or the lock changes.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[book,test]"
	touch $(STAMP)

venv: $(STAMP)

## make book: set up, execute every chapter and build the HTML into _build/html
# A build over an earlier one with another profile, execution mode or package code re-executes every
# page (tools/sphinxext/nncosmo_build.py); the offline stamp is dropped because the pages load MathJax
# from the CDN again (tools/check_browser.py --is-fresh then rebuilds the offline book).
book: $(STAMP)
	rm -f _build/html/.nncosmo-offline-build
	$(BIN)/jupyter-book build . $(BOOK_FLAGS)

## make test: set up, run the unit tests and every chapter under nbval, then check the chapters' claims.
# The unit tests and the chapters are independent: they run side by side (two jobs for two cores), and
# the chapters themselves run NBVAL_JOBS at a time, longest first. The checks of the project's own
# machinery (mutation check, Dask cluster, book builds, JupyterLab server, nbval harness: pytest marker
# `tooling`) are `make check-tooling`, which CI runs after `make test`.
NBVAL_JOBS ?= 2
test: $(STAMP)
	$(MAKE) -j2 --output-sync=target unit nbval

unit: $(STAMP)
	$(BIN)/python -m pytest tests -q -m "not tooling"

## make check-tooling: the tests of the project's machinery (run by CI; slower than `make test`)
check-tooling: $(STAMP)
	$(BIN)/python -m pytest tests -q -m tooling

# Every chapter in _toc.yml, converted with jupytext into a copy of its stored reference notebook
# (tests/nbval/), is executed and its `# NBVAL_CHECK_OUTPUT` cells compared with the stored outputs
# (one pytest per chapter, NBVAL_JOBS at a time; `tools/nbval_chapters.py prepare` prints them longest
# first). The chapters record their claims into $(CLAIMS_DIR) (emptied first: a chapter that stopped
# recording fails), and tools/claims.py compares them with tests/claims/; any failure fails the target.
nbval: $(STAMP)
	rm -rf $(CLAIMS_DIR)
	mkdir -p _build
	$(BIN)/python tools/nbval_chapters.py prepare _build/nbval > _build/nbval-order.txt
	NNCOSMO_CLAIMS_DIR=$(CLAIMS_DIR) xargs -P $(NBVAL_JOBS) -n 1 $(BIN)/python -m pytest --nbval-lax \
	  --nbval-cell-timeout=900 -p no:cacheprovider -q < _build/nbval-order.txt; status=$$?; \
	$(BIN)/python tools/claims.py check $(CLAIMS_DIR) tests/claims || status=1; exit $$status

## make refs [CHAPTERS="book/x.md ..."]: re-execute chapters (all by default) and store their references:
## nbval outputs (tests/nbval/), claims and the coverage record (tests/claims/). Same as nbval-refs, claims-refs.
refs nbval-refs claims-refs: $(STAMP)
	$(BIN)/python tools/nbval_chapters.py refs $(CHAPTERS)

## make lock: refresh constraints.txt from the current environment (after changing pyproject.toml)
lock:
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e ' > constraints.txt

clean:
	rm -rf _build

# ---------------------------------------------------------------------------------------------------
# The book as a reader sees it. `make check-browser` (run by CI after `make test`) needs npm (MathJax,
# pinned by package-lock.json) and Debian's chromium, which it installs when missing (as root).
.PHONY: book-offline check-browser
MATHJAX  := node_modules/mathjax/es5/tex-mml-chtml.js
CHROMIUM ?= /usr/bin/chromium

$(MATHJAX): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

$(CHROMIUM):
	DEBIAN_FRONTEND=noninteractive apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium

## make book-offline: like `make book`, with MathJax from node_modules, so the HTML works without network
book-offline: $(STAMP) $(MATHJAX)
	rm -f _build/html/.nncosmo-offline-build
	NNCOSMO_MATHJAX=local $(BIN)/jupyter-book build . $(BOOK_FLAGS)
	touch _build/html/.nncosmo-offline-build

## make check-browser: open every page of the offline book in headless Chromium and check images, math,
## links, cross-references and glue; run every chapter in JupyterLab in the same browser and check what
## it shows (tests/browser/test_jupyterlab_reader.py); screenshots go to _build/screenshots/
check-browser: $(STAMP) $(MATHJAX) $(CHROMIUM)
	NNCOSMO_JUPYTERLAB_BROWSER=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/browser
	$(BIN)/python tools/check_browser.py --is-fresh || $(MAKE) book-offline
	$(BIN)/python tools/check_browser.py

## make bench-ntk: empirical-NTK benchmark against neural-tangents 0.6.5 (side environment .nt-venv)
NT_VENV := .nt-venv
$(NT_VENV)/.installed-stamp: tools/nt_reference/requirements.txt
	test -x $(NT_VENV)/bin/python || $(PYTHON) -m venv $(NT_VENV)
	$(NT_VENV)/bin/python -m pip install --quiet -r tools/nt_reference/requirements.txt
	touch $@

.PHONY: bench-ntk
bench-ntk: $(STAMP) $(NT_VENV)/.installed-stamp
	$(BIN)/python benchmarks/ntk.py --markdown --nt-python $(NT_VENV)/bin/python

## make book-paper: run the paper-profile scans (Figs. 1-5 and the chapters' scans of scans.beyond: background, perturbations, optimisers, width and precision, appendix; resumable: stored results are reused), then build the book on them (the chapters only read).
## The scans' output goes to _build/scans-paper.log too (its per-scan totals time the first group of each scan for benchmarks/scan_time.py)
.PHONY: book-paper bench-scans
book-paper: SHELL := /bin/bash
book-paper: $(STAMP)
	mkdir -p _build; set -o pipefail; $(BIN)/python -m nncosmo_helpers.scans --profile paper 2>&1 | tee _build/scans-paper.log
	rm -f _build/html/.nncosmo-offline-build
	@start=$$(date +%s); NNCOSMO_PROFILE=paper $(BIN)/jupyter-book build . $(BOOK_FLAGS); status=$$?; \
	echo "book build (paper profile, after the scans): $$(( $$(date +%s) - start )) s"; exit $$status

## make bench-scans (benchmarks/roofline.py; benchmarks/scans.py is the older batched-vs-naive comparison): roofline of each figure's paper scan (counted flops and bytes, measured matmul rate and
## bandwidth, measured time, achieved fraction; 20 timed steps per cost class); table on stdout, JSON in _build/bench-scans.json.
## If results/paper holds a run of `make book-paper`, also the roofline of that whole run (benchmarks/scan_time.py: every scan,
## every stored configuration, wall time per group; meaningful for one uninterrupted run), JSON in _build/scan-time.json
bench-scans: $(STAMP)
	$(BIN)/python benchmarks/roofline.py
	if [ -d results/paper ]; then $(BIN)/python benchmarks/scan_time.py results/paper \
	  $$( [ -f _build/scans-paper.log ] && echo --log _build/scans-paper.log ); fi
