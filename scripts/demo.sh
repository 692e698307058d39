#!/usr/bin/env bash
# Set everything up, then build the demo census into ./demo/ and print a real query result.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh build synth   # the demo needs the builder and the synthesizer
exec .venv/bin/cellcensus demo ./demo "$@"
