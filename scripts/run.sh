#!/usr/bin/env bash
# Install the project on a fresh machine and run its main job: the demonstration's month
# (August 2020, the shipped Higashi-Fuji scenario) on the exchange with its agents, the
# ledger on an in-process chain, and the savings table beside the demonstration's.
# Extra arguments go to `p2penergy simulate` (e.g. --mechanism pay-as-clear, --days 3).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
p2penergy simulate "$@"
