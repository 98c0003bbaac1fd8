#!/usr/bin/env bash
# Set up everything and run the whole test suite: lint, types, and every test tier
# (unit, emulator, pcsc through a real pcscd + vpcd, services on SQLite and PostgreSQL, e2e: the
# kiosk page in headless Chromium). Extra arguments go to pytest.
# The pcsc and e2e tiers run in a private mount + network namespace with a pcscd of their own
# where the machine allows it (tests/conftest.py moves pytest there; docs/testing.md §3); the
# report header says which arrangement a run has.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh --pcsc --services --e2e

echo "== ruff" >&2
.venv/bin/ruff check src tests tools
.venv/bin/ruff format --check src tests tools
echo "== mypy" >&2
.venv/bin/mypy

echo "== pytest" >&2
status=0
.venv/bin/pytest -p no:cacheprovider "$@" || status=$?
if [ "$status" = 5 ]; then
  # pytest's "no tests collected" must never pass silently.
  echo "test: pytest collected no tests: failing" >&2
  exit 1
fi
exit "$status"
