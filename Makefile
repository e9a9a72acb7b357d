# The two commands of the README. Each sets up .venv first (fast when nothing changed).
PY := .venv/bin/python

.PHONY: setup demo test test-all lint

setup:
	@bash scripts/setup.sh

demo: setup
	$(PY) -m apar_sgl.demo

test: setup
	bash scripts/test.sh

test-all: setup
	bash scripts/test.sh -m ""

lint: setup
	$(PY) -m ruff check . && $(PY) -m ruff format --check .
