#!/usr/bin/env bash
# The whole test suite: static checks, then pytest on SQLite and on PostgreSQL.
# NAVIGATOR_TEST_POSTGRES_URL names the PostgreSQL server (default: the local one). Outside CI
# an unreachable PostgreSQL is skipped with a warning; under CI (CI=true) it fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each part's wall time, printed as it ends and summed up at the end (for the README figures).
stage_started=$SECONDS
timings=()
stage_done() {
  timings+=("$1: $((SECONDS - stage_started)) s")
  echo "== $1 took $((SECONDS - stage_started)) s"
  stage_started=$SECONDS
}
trap 'printf "== timings: %s\n" "${timings[@]}"' EXIT

scripts/lint.sh
stage_done "lint"

PG_URL=${NAVIGATOR_TEST_POSTGRES_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test}
PYTEST=(.venv/bin/python -m pytest -n "${NAVIGATOR_TEST_WORKERS:-2}" -m "not faults" "$@")
# The pytest workers already use every core: one OpenMP/BLAS thread each (gradient boosting's
# default pool, one thread per core in every worker, only contends).
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}

echo "== tests on SQLite"
NAVIGATOR_TEST_DATABASE_URL="sqlite://" "${PYTEST[@]}"
stage_done "SQLite"

# No test may depend on today's date: the SQLite suite runs twice more with the system clock
# moved by libfaketime (Debian package faketime, installed by .ci/run) and the tests' own
# clock moved with it: over a year ahead inside British Summer Time, and just after local
# midnight in winter. The API fuzz (derandomised, so the same requests every run) sends its
# first NAVIGATOR_FUZZ_EXAMPLES (4 here, 15 in the main runs) per operation there: those runs
# are about dates, the main runs about inputs. NAVIGATOR_TEST_MOVED_CLOCK=0 skips them (a
# quicker local run; CI never sets it).
if [ "${NAVIGATOR_TEST_MOVED_CLOCK:-1}" = "0" ] && [ "${CI:-}" != "true" ]; then
  echo "== moved-clock runs skipped (NAVIGATOR_TEST_MOVED_CLOCK=0)"
elif command -v faketime >/dev/null 2>&1; then
  for moment in "2028-07-12 10:30:00|2028-07-12T10:30:00+00:00" \
                "2028-01-12 00:05:00|2028-01-12T00:05:00+00:00"; do
    system_time=${moment%%|*}
    echo "== tests on SQLite, system clock moved to ${system_time} UTC"
    TZ=UTC NAVIGATOR_TEST_NOW=${moment##*|} NAVIGATOR_TEST_DATABASE_URL="sqlite://" \
      NAVIGATOR_FUZZ_EXAMPLES=${NAVIGATOR_FUZZ_EXAMPLES:-4} \
      faketime "${system_time}" "${PYTEST[@]}"
    stage_done "SQLite at ${system_time}"
  done
elif [ "${CI:-}" = "true" ]; then
  echo "faketime is required under CI (Debian package faketime)" >&2
  exit 1
else
  echo "WARNING: faketime not found; the moved-clock runs were skipped" >&2
fi

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
  stage_done "PostgreSQL"
  # Fault tests restart the shared PostgreSQL: serially, after everything else, and each
  # waits for pg_isready before it ends.
  echo "== fault tests on PostgreSQL (restarts the server)"
  NAVIGATOR_TEST_DATABASE_URL="$PG_URL" .venv/bin/python -m pytest -m faults -p no:xdist "$@"
  stage_done "PostgreSQL faults"
elif [ "${CI:-}" = "true" ]; then
  echo "PostgreSQL is required under CI" >&2
  exit 1
else
  echo "WARNING: PostgreSQL unreachable; only SQLite was tested" >&2
fi
