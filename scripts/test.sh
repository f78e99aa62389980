#!/usr/bin/env bash
# Install everything the tests need on a fresh machine (Python 3.11 + pip, Node 20 + npm,
# Debian apt), then lint and run the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
"$VENV/bin/ruff" check src tests benchmarks
set +e
# Tests run in parallel (pytest-xdist), one worker per CPU unless P2PENERGY_TEST_WORKERS says otherwise
# (0: in this process); a module's tests share one worker, so its module fixtures are built once; the
# slowest modules first (tests/conftest.py)
"$VENV/bin/python" -m pytest -n "${P2PENERGY_TEST_WORKERS:-auto}" --dist loadscope --no-loadscope-reorder "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
    echo "pytest collected no tests: failing, a test run must test something" >&2
    exit 1
fi
exit "$rc"
