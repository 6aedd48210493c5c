#!/usr/bin/env bash
# The main job on a fresh machine: set up softreg, find Fashion-MNIST, train softmax regression
# with the book's recipe (10 epochs, batch 256, lr 0.1) and show the results.
# Extra arguments go to `softreg train` (e.g. --dataset mnist --out runs/mnist).
#
# Setup happens once: .venv is created and softreg installed into it (editable, with its fast
# extra), and a stamp in .venv records pyproject.toml's hash and softreg's version; later runs
# skip both until either changes. The data is looked for on this machine first (quietly); if
# it is not there, root on Debian/Ubuntu installs the dataset's package, else it is downloaded.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
EXTRAS=fast  # numba: the fused training step (softreg works without it)
say() { echo "quickstart: $*"; }

# --- setup, once --------------------------------------------------------------------------------
stamp_file="$VENV/.softreg-quickstart"
stamp="$(python3 -c 'import hashlib, re, sys
version = re.search(r"^__version__ = (.*)$", open("src/softreg/__init__.py").read(), re.M)
project = hashlib.sha256(open("pyproject.toml", "rb").read()).hexdigest()
print(project, version and version[1], sys.version.split()[0])'
) [$EXTRAS]"
if [ -x "$VENV/bin/softreg" ] && [ "$(cat "$stamp_file" 2>/dev/null)" = "$stamp" ] &&
    "$VENV/bin/python" -c 'import softreg' 2>/dev/null; then
    say "softreg is installed in $VENV already (same version and pyproject.toml): no setup"
else
    say "creating $VENV and installing softreg[$EXTRAS] into it (once) ..."
    rm -f "$stamp_file"
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -e ".[$EXTRAS]"
    echo "$stamp" >"$stamp_file"
fi
softreg="$VENV/bin/softreg"

# --- the data -----------------------------------------------------------------------------------
dataset=fashion-mnist out=runs/book-recipe data_dir=()
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    next="${args[i + 1]:-}"
    case "${args[i]}" in
    --dataset) dataset="$next" ;;
    --dataset=*) dataset="${args[i]#*=}" ;;
    --out) out="$next" ;;
    --out=*) out="${args[i]#*=}" ;;
    --data-dir) data_dir=(--data-dir "$next") ;;
    --data-dir=*) data_dir=(--data-dir "${args[i]#*=}") ;;
    esac
done
find_local() { "$softreg" data --dataset "$dataset" ${data_dir[@]+"${data_dir[@]}"} --no-download 2>/dev/null; }

how="found on this machine"
if ! found="$(find_local)"; then
    package="$("$VENV/bin/python" -c 'import sys
from softreg.data.catalog import dataset_spec
print(dataset_spec(sys.argv[1]).debian_package or "")' "$dataset" 2>/dev/null || true)"
    found=""
    if [ -n "$package" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        say "$dataset is not on this machine; installing Debian's $package ..."
        log="$(mktemp)"
        if { apt-get update -qq && apt-get install -y -qq "$package"; } >"$log" 2>&1 &&
            found="$(find_local)"; then
            how="installed from Debian's $package"
        else
            say "apt-get could not install $package (its output: $log); trying a download"
        fi
    fi
    if [ -z "$found" ]; then
        say "downloading $dataset from its official mirrors ..."
        found="$("$softreg" data --dataset "$dataset" ${data_dir[@]+"${data_dir[@]}"})"
        how="downloaded"
    fi
fi
say "data: $found ($how)"

# --- train and show -----------------------------------------------------------------------------
"$softreg" train --out "$out" --overwrite "$@"

"$VENV/bin/python" - "$out" <<'EOF'
import json
import sys
from pathlib import Path

run = Path(sys.argv[1])
m = json.loads((run / "metrics.json").read_text())
epochs = f"{m['epochs']} epoch{'s' if m['epochs'] != 1 else ''}"
print(
    f"\nquickstart: {m['model']} on {m['dataset']}, {epochs}: "
    f"test accuracy {m['test_acc']:.4f}, train accuracy {m['train_acc']:.4f}, "
    f"train loss {m['train_loss']:.4f}, test loss {m['test_loss']:.4f} "
    f"({m['seconds_train']:.1f} s of training)"
)
print(f"quickstart: {run}/ holds metrics.json (every number) and model.safetensors (the model)")
figures = {
    "curves.png": "train loss, train accuracy and test accuracy after each epoch (the book's figure)",
    "predictions.png": "the first test images, each titled true label over predicted label",
    "misclassified.png": "the first test images the model got wrong, titled likewise",
}
for name, what in figures.items():
    if (run / name).exists():
        print(f"  {name}: {what}")
EOF
