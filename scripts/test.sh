#!/usr/bin/env bash
# The whole test suite: static checks, then pytest on SQLite and on PostgreSQL.
# NAVIGATOR_TEST_POSTGRES_URL names the PostgreSQL server (default: the local one). Outside CI
# an unreachable PostgreSQL is skipped with a warning; under CI (CI=true) it fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/lint.sh

PG_URL=${NAVIGATOR_TEST_POSTGRES_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test}
PYTEST=(.venv/bin/python -m pytest -n "${NAVIGATOR_TEST_WORKERS:-2}" -m "not faults" "$@")

echo "== tests on SQLite"
NAVIGATOR_TEST_DATABASE_URL="sqlite://" "${PYTEST[@]}"

if .venv/bin/python - "$PG_URL" <<'PY'
import sys
from sqlalchemy import create_engine, text
try:
    with create_engine(sys.argv[1]).connect() as c:
        c.execute(text("select 1"))
except Exception as error:
    print(f"PostgreSQL unreachable: {type(error).__name__}", file=sys.stderr)
    sys.exit(1)
PY
then
  echo "== tests on PostgreSQL"
  NAVIGATOR_TEST_DATABASE_URL="$PG_URL" "${PYTEST[@]}"
  # Fault tests restart the shared PostgreSQL: serially, after everything else, and each
  # waits for pg_isready before it ends.
  echo "== fault tests on PostgreSQL (restarts the server)"
  NAVIGATOR_TEST_DATABASE_URL="$PG_URL" .venv/bin/python -m pytest -m faults -p no:xdist "$@"
elif [ "${CI:-}" = "true" ]; then
  echo "PostgreSQL is required under CI" >&2
  exit 1
else
  echo "WARNING: PostgreSQL unreachable; only SQLite was tested" >&2
fi
