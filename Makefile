# Two commands do all the set-up on a fresh Debian/Ubuntu machine with Python 3.11+:
#   make demo   installs what is missing, then runs the demo (inspector page at http://127.0.0.1:8000)
#   make test   installs what is missing, then runs ruff, mypy and the whole test suite
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo demo-headless test lint install-demo install-test bench

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
