#!/usr/bin/env bash
# Install everything the tests need on a fresh machine (Python 3.11 + pip, Node 20 + npm,
# Debian apt), then lint and run the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
"$VENV/bin/ruff" check src tests benchmarks
set +e
"$VENV/bin/python" -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
    echo "pytest collected no tests: failing, a test run must test something" >&2
    exit 1
fi
exit "$rc"
