#!/usr/bin/env bash
# The main job on a fresh machine: set up softreg, find Fashion-MNIST, train softmax regression
# with the book's recipe (10 epochs, batch 256, lr 0.1) and show the results.
# Extra arguments go to `softreg train` (e.g. --dataset mnist).
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[cli]'

# softreg looks in $SOFTREG_DATA, ~/.cache/softreg, /usr/share/datasets, then downloads from the
# official mirrors. Without internet, Debian/Ubuntu's package provides the same files.
if ! .venv/bin/softreg data --dataset fashion-mnist; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        echo "quickstart: no download possible; installing Debian's dataset-fashion-mnist" >&2
        apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null
    else
        echo "quickstart: as root: apt-get install dataset-fashion-mnist (or set SOFTREG_DATA)" >&2
        exit 1
    fi
fi

.venv/bin/softreg train --out runs/book-recipe --overwrite "$@"
echo "figures: runs/book-recipe/curves.png  predictions.png  misclassified.png"
