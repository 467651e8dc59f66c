#!/usr/bin/env bash
# Static checks: ruff (lint and format) and mypy. One command, called by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check app tests scripts migrations
.venv/bin/ruff format --check app tests scripts migrations
.venv/bin/mypy app tests $(find scripts -name "*.py")
