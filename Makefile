# nncosmo: two commands for readers (`make book`, `make test`), a few more for developers.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
export NNCOSMO_PROFILE ?= quick
# Sphinx: warnings are errors, nitpicky cross-references, keep going to report all of them.
BOOK_FLAGS ?= -W -n --keep-going

.PHONY: venv book test unit nbval nbval-refs clean lock

# The virtual environment, re-created when the dependency list or the lock changes.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[book,test]"
	touch $(STAMP)

venv: $(STAMP)

## make book: set up, execute every chapter and build the HTML into _build/html
book: $(STAMP)
	$(BIN)/jupyter-book build . $(BOOK_FLAGS)

## make test: set up, run the unit tests and every chapter under nbval
test: $(STAMP)
	$(BIN)/python -m pytest tests -q
	$(MAKE) nbval

unit: $(STAMP)
	$(BIN)/python -m pytest tests -q

# Every chapter in _toc.yml, converted with jupytext into a copy of its stored reference notebook
# (tests/nbval/), is executed and its `# NBVAL_CHECK_OUTPUT` cells compared with the stored outputs.
nbval: $(STAMP)
	$(BIN)/python tools/nbval_chapters.py prepare _build/nbval
	$(BIN)/python -m pytest --nbval-lax --nbval-cell-timeout=900 -p no:cacheprovider -q _build/nbval

## make nbval-refs [CHAPTERS="book/x.md ..."]: re-execute chapters and store their reference outputs
nbval-refs: $(STAMP)
	$(BIN)/python tools/nbval_chapters.py refs $(CHAPTERS)

## make lock: refresh constraints.txt from the current environment (after changing pyproject.toml)
lock:
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e ' > constraints.txt

clean:
	rm -rf _build
