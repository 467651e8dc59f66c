# The two commands (see README): `make demo` runs Navigator with demo data; `make test` runs
# every check. Both install what they need first.
.PHONY: demo test setup lint format bench

demo: setup
	.venv/bin/navigator demo

test: setup
	scripts/test.sh

setup:
	scripts/setup.sh

lint: setup
	scripts/lint.sh

format: setup
	.venv/bin/ruff format app tests scripts migrations
	.venv/bin/ruff check --fix app tests scripts migrations
