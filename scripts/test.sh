#!/usr/bin/env bash
# Set up what is missing (Debian packages, .venv), then run the whole test suite.
# Tests that need root and a real systemd boot one in a container; run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
