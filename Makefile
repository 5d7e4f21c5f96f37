# Two commands do all the set-up on a fresh Debian/Ubuntu machine with Python 3.11+:
#   make demo   installs what is missing, then runs the demo (inspector page at http://127.0.0.1:8000)
#   make test   installs what is missing, then runs ruff, mypy and the whole test suite
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo demo-headless test lint install-demo install-test bench dist constraints

install-demo:
	@bash scripts/bootstrap.sh demo

install-test:
	@bash scripts/bootstrap.sh test

demo: install-demo
	$(BIN)/anju demo

demo-headless: install-demo
	$(BIN)/anju demo --headless

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -q -p no:cacheprovider

# The wheel (one for every deployable: pick the extra at install time) and the versions it was tested with.
# deploy/constraints.txt is the pinned set the hub image and gateways install against; refresh it with
# `make constraints` after a dependency change, and commit it.
dist: install-test
	rm -rf dist && mkdir -p dist
	$(BIN)/python -m pip wheel -q --no-deps -w dist .
	cp deploy/constraints.txt dist/constraints.txt
	@ls -l dist

constraints: install-test
	$(BIN)/python scripts/freeze_constraints.py > deploy/constraints.txt
