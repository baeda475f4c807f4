#!/usr/bin/env bash
# A long fuzzing campaign for a person to run (the suite runs the same tests briefly).
#   scripts/fuzz-campaign.sh [EXAMPLES] [PYTEST ARGS...]
# EXAMPLES is the number of generated inputs per test (default 200000). An input that
# breaks a parser is printed by hypothesis; keep it as a file under
# tests/data/fuzz-regressions/<parser>/ so that the suite replays it from then on.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
examples=${1:-200000}; shift || true
FUZZ_EXAMPLES=$examples exec .venv/bin/python -m pytest tests/ -k fuzz -q -p no:cacheprovider "$@"
