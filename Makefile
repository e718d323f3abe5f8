.PHONY: setup demo test bench clean
setup:
	@bash scripts/setup.sh

demo: setup
	@.venv/bin/fedledger demo

test: setup
	@.venv/bin/ruff check .
	@.venv/bin/mypy
	@.venv/bin/python -m pytest -q

bench: setup
	@.venv/bin/python -m bench.gas && .venv/bin/python -m bench.aggregators

clean:
	rm -rf .venv .tools .fedledger
