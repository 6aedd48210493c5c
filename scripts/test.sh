#!/usr/bin/env bash
# Set up and run the whole test suite (what CI runs). Real data comes from $SOFTREG_DATA or
# ../shared/data beside the repository; nothing touches the network.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
.venv/bin/ruff check src tests bench
.venv/bin/python -m pytest
