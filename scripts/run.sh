#!/usr/bin/env bash
# Install the project on a fresh machine and run its main job on the embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
p2penergy market clear examples/orders.csv --mechanism cda "$@"
