#!/usr/bin/env bash
# Does MXNet 1.9.1 (retired by Apache in 2023) install and run on this Python, and can it share
# an environment with softreg? Everything happens in a throwaway venv; softreg is not changed.
# The documentation's "TensorFlow and MXNet" section (docs/user-guide/backends.md) quotes this script's output.
#   bash scripts/probe_mxnet.sh [VENV_DIR]     (default: a new temporary directory)
set -uo pipefail
venv=${1:-$(mktemp -d)/mx-venv}
say() { printf '\n== %s\n' "$*"; }

say "python: $(python3 --version)"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip 2>&1 | grep -v "^WARNING"

say "pip install mxnet==1.9.1"
"$venv/bin/python" -m pip install mxnet==1.9.1 2>&1 | grep -E "mxnet-|numpy-|Successfully|ERROR" | grep -v "^WARNING"
"$venv/bin/python" -m pip list 2>/dev/null | grep -iE "^(mxnet|numpy) "
"$venv/bin/python" -m pip show mxnet 2>/dev/null | grep -E "^Requires"

say "import mxnet (with the numpy it pulled in)"
"$venv/bin/python" -c "import mxnet; print('mxnet', mxnet.__version__)" 2>&1 \
    | grep -E "^(mxnet|[A-Za-z]*Error)" | head -n 2

say "pip install 'numpy<1.24'; import mxnet again"
"$venv/bin/python" -m pip install --quiet 'numpy<1.24' 2>&1 | grep -v "^WARNING"
"$venv/bin/python" - <<'EOF' 2>&1 | tail -n 12
import numpy as onp
import mxnet as mx
from mxnet import autograd, npx
from mxnet import np as mnp

npx.set_np()
print("mxnet", mx.__version__, "numpy", onp.__version__)
print("softmax:", npx.softmax(mnp.array([[1.0, 2.0, 3.0]]), axis=-1))
rng = onp.random.default_rng(0)
X = mnp.array(rng.random((256, 784), dtype=onp.float32))
y = mnp.array(rng.integers(0, 10, 256), dtype="int32")
W = mnp.array(rng.normal(0, 0.01, (784, 10)).astype("float32"))
b = mnp.zeros((10,), dtype="float32")
W.attach_grad()
b.attach_grad()
for step in range(3):
    with autograd.record():
        loss = -npx.pick(npx.log_softmax(X @ W + b, axis=1), y, axis=1).mean()
    loss.backward()
    W[:] = W - 0.1 * W.grad
    b[:] = b - 0.1 * b.grad
    print(f"SGD step {step}: loss {float(loss):.6f}")
missing = [n for n in ("astype", "asarray", "isdtype") if not hasattr(mnp, n)]
print("array-API names missing from mxnet.numpy:", missing)
EOF

say "can mxnet share an environment with softreg (numpy>=2.1)?"
"$venv/bin/python" -m pip install --dry-run --quiet mxnet==1.9.1 'numpy>=2.1' 2>&1 \
    | grep -E "ERROR|depends on|conflict" | grep -v "^WARNING" | head -n 4
