#!/usr/bin/env bash
# Install everything Navigator needs into .venv (idempotent, quick when nothing changed).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.navigator-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -c constraints.txt -e ".[dev]"
  touch "$stamp"
fi

# The NHS.UK frontend (npm package nhsuk-frontend, pinned in package-lock.json): installed
# with `npm ci` when node_modules is missing or older than the lock file, then its compiled
# CSS, JavaScript and assets are copied to app/ui/static/nhsuk/ (gitignored), served at /static.
nhsuk_dist=node_modules/nhsuk-frontend/dist/nhsuk
nhsuk_static=app/ui/static/nhsuk
if [ ! -d "$nhsuk_dist" ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  if command -v npm >/dev/null 2>&1; then
    npm ci --no-audit --no-fund --loglevel=error
  elif [ "${CI:-}" = "true" ]; then
    echo "npm is required under CI (the NHS.UK frontend is installed with npm ci)" >&2
    exit 1
  else
    echo "WARNING: npm not found; pages will be served without the NHS.UK styles" >&2
  fi
fi
if [ -d "$nhsuk_dist" ] && { [ ! -f "$nhsuk_static/.copied" ] || [ node_modules/.package-lock.json -nt "$nhsuk_static/.copied" ]; }; then
  rm -rf "$nhsuk_static"
  mkdir -p "$nhsuk_static"
  cp "$nhsuk_dist"/nhsuk-frontend.min.css "$nhsuk_dist"/nhsuk-frontend.min.css.map \
     "$nhsuk_dist"/nhsuk-frontend.min.js "$nhsuk_dist"/nhsuk-frontend.min.js.map "$nhsuk_static"/
  cp -R "$nhsuk_dist"/assets "$nhsuk_static"/assets
  touch "$nhsuk_static/.copied"
fi
# Its @font-face rules load Frutiger from https://assets.nhs.uk: serve the fonts the package
# ships from Navigator and drop the rest (fallback: Arial, then sans-serif), so no page waits
# on a host outside the trust. Idempotent, so it runs every time (copies made before it too).
if [ -f "$nhsuk_static/nhsuk-frontend.min.css" ]; then
  .venv/bin/python -m app.ui.fonts "$nhsuk_static/nhsuk-frontend.min.css"
fi
