#!/usr/bin/env bash
# Build the documentation site offline: bash scripts/docs.sh
#
# Sets up .venv-docs with the pinned documentation stack (docs/requirements.txt) and softreg
# itself, builds the HTML from scratch with warnings as errors (the gallery examples run on
# the real Fashion-MNIST from $SOFTREG_DATA, default ../shared/data beside the repository),
# then checks every internal link of the built site. Nothing touches the network but pip.
# The site is docs/_build/html; tests/test_docs.py opens it in headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)

venv=.venv-docs
stamp="$venv/.installed"
want="$(cat docs/requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install -qq --upgrade pip
    "$venv/bin/python" -m pip install -qq -r docs/requirements.txt
    "$venv/bin/python" -m pip install -qq -e .
    echo "$want" > "$stamp"
fi
installed=$(date +%s)

if [[ -z "${SOFTREG_DATA:-}" && -d ../shared/data ]]; then
    SOFTREG_DATA="$(cd ../shared/data && pwd)"
fi
export SOFTREG_DATA="${SOFTREG_DATA:-}"
export MPLBACKEND=Agg
# A clean build, so that every page is read again and every warning shows.
rm -rf docs/_build docs/api/generated docs/api/backrefs docs/auto_examples docs/sg_execution_times.rst
"$venv/bin/sphinx-build" -b html -W --keep-going -q docs docs/_build/html
built=$(date +%s)
"$venv/bin/python" docs/check_links.py docs/_build/html
checked=$(date +%s)
# The built site in a real browser: Debian's chromium, driven through chromedriver.
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
    "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/test_docs.py
else
    echo "docs: browser check skipped: no chromium/chromedriver (apt-get install chromium chromium-driver)"
fi
end=$(date +%s)

echo "docs: set-up $((installed - start)) s, build $((built - installed)) s," \
    "link check $((checked - built)) s, browser $((end - checked)) s, total $((end - start)) s" \
    "-> docs/_build/html/index.html"
