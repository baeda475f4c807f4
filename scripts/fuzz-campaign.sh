#!/usr/bin/env bash
# A long fuzzing campaign for a person to run (the suite runs the same tests briefly).
#   scripts/fuzz-campaign.sh [EXAMPLES] [PYTEST ARGS...]
# EXAMPLES is the number of generated inputs per test (default 200000; the tests that
# drive a running daemon, tests/test_fuzz_daemons.py, take a tenth of it). Every fuzz
# target is a test named test_fuzz_*; the statistics at the end say how many inputs each
# one ran. An input that breaks a parser is printed by hypothesis; keep it as a file
# under tests/data/fuzz-regressions/<parser>/ so that the suite replays it from then on.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
examples=${1:-200000}; shift || true
FUZZ_EXAMPLES=$examples exec .venv/bin/python -m pytest tests/ -k fuzz -q -p no:cacheprovider \
    --hypothesis-show-statistics "$@"
