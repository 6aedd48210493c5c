#!/usr/bin/env bash
# Set up and run the whole test suite (what CI runs). Real data comes from $SOFTREG_DATA or
# ../shared/data beside the repository; nothing touches the network.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# Every backend, CPU builds: torch==2.13.0 is a local CPU wheel here (an open range would pull
# a CUDA build of several GB); tensorflow-cpu is TensorFlow without the GPU libraries.
.venv/bin/python -m pip install --quiet torch==2.13.0 tensorflow-cpu
.venv/bin/python -m pip install --quiet -e '.[test,torch,jax]'
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
.venv/bin/python -m pytest
