#!/usr/bin/env bash
# softreg on one NVIDIA GPU: the recipe and MLP benchmarks on the GPU backends, and the tests
# that have a device axis (torch-cuda, jax-gpu), gathered into bench/results/gpu.json.
#
#   bench/gpu.sh [--venv DIR] [--no-install] [--data-dir DIR] [--json PATH] [--repeat N]
#                [--epochs N] [--limit N] [--skip-tests] [--skip-book] [--device cpu]
#
# Without a GPU (nvidia-smi -L lists none) it prints one line and exits 0. Otherwise:
#   1. install: a fresh venv (--venv DIR, default a temporary directory) with softreg from this
#      tree and the CUDA wheels from PyPI (torch's default Linux wheel is the CUDA build;
#      jax[cuda12]); uv when it is on PATH, else pip. --no-install uses the current Python
#      ($PYTHON, else python3) as it is, softreg from this tree (PYTHONPATH=src).
#   2. bench_recipe.py --device cuda: softreg-torch, softreg-jax, jax-scan and book-pytorch
#      (the book's program with W, b and each batch on the GPU: the ratio's reference).
#   3. bench_mlp.py --device cuda: softreg-torch and softreg-jax.
#   4. pytest -m "not slow" -k "cuda or gpu": the GPU cases of the backend axis
#      (tests/conftest.py adds torch-cuda and jax-gpu where the libraries see a GPU).
#   5. bench/gpu_report.py: one JSON report (--json, default bench/results/gpu.json), a table.
# The data: --data-dir, else $SOFTREG_DATA, else ../shared/data next to the repository.
# --device cpu runs the same steps on the CPU without looking for a GPU: a dry check of this
# script on any machine (with --no-install and --limit, it takes a minute).
# Exit status: 0 when every step ran and passed, 1 when one failed, 2 on a bad option.
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="" INSTALL=1 DATA="" JSON="$REPO/bench/results/gpu.json" REPEAT=3 EPOCHS=10 LIMIT=""
TESTS=1 BOOK=1 DEVICE=cuda

usage() { sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while (($#)); do
  case "$1" in
    --venv) VENV="$2"; shift 2 ;;
    --no-install) INSTALL=0; shift ;;
    --data-dir) DATA="$2"; shift 2 ;;
    --json) JSON="$2"; shift 2 ;;
    --repeat) REPEAT="$2"; shift 2 ;;
    --epochs) EPOCHS="$2"; shift 2 ;;
    --limit) LIMIT="$2"; shift 2 ;;
    --skip-tests) TESTS=0; shift ;;
    --skip-book) BOOK=0; shift ;;
    --device) DEVICE="$2"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "gpu.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$DEVICE" in cuda | gpu | cpu) ;; *) echo "gpu.sh: --device cuda, gpu or cpu" >&2; exit 2 ;; esac

# --- 0. a GPU? ------------------------------------------------------------------------------
if [[ "$DEVICE" != cpu ]]; then
  if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
    echo "gpu.sh: no NVIDIA GPU here (nvidia-smi -L lists none); nothing to run"
    exit 0
  fi
fi

cd "$REPO" || exit 2
WORK="$(mktemp -d "${TMPDIR:-/tmp}/softreg-gpu.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
DATA="${DATA:-${SOFTREG_DATA:-$REPO/../shared/data}}"
if [[ ! -d "$DATA" ]]; then
  echo "gpu.sh: no data directory $DATA (pass --data-dir or set SOFTREG_DATA)" >&2
  exit 2
fi
export SOFTREG_DATA="$DATA" PYTHONPATH="$REPO/src${PYTHONPATH:+:$PYTHONPATH}"
if [[ "$DEVICE" != cpu ]]; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -1 \
    >"$WORK/gpu.txt"
  echo "gpu.sh: $(cat "$WORK/gpu.txt")"
else
  echo "cpu (dry check: --device cpu)" >"$WORK/gpu.txt"
fi

FAILED=()
PHASES=()
phase() { # phase NAME COMMAND...: run it, time it, remember a failure
  local name="$1" start end rc
  shift
  echo "gpu.sh: [$name] $*" >&2
  start=$(date +%s.%N)
  "$@"
  rc=$?
  end=$(date +%s.%N)
  PHASES+=("\"$name\": $(awk "BEGIN { print $end - $start }")")
  ((rc == 0)) || FAILED+=("$name (exit status $rc)")
  return 0
}

# --- 1. install -----------------------------------------------------------------------------
install() {
  VENV="${VENV:-$WORK/venv}"
  if command -v uv >/dev/null 2>&1; then
    uv venv -q "$VENV" && VIRTUAL_ENV="$VENV" uv pip install -q -e "$REPO[torch,jax,test]" \
      "jax[cuda12]" numba
  else
    python3 -m venv "$VENV" && "$VENV/bin/pip" install -q --upgrade pip &&
      "$VENV/bin/pip" install -q -e "$REPO[torch,jax,test]" "jax[cuda12]" numba
  fi
}
if ((INSTALL)); then
  phase install install
  PY="$VENV/bin/python"
  [[ -x "$PY" ]] || { echo "gpu.sh: the install failed: ${FAILED[*]}" >&2; exit 1; }
else
  PY="${PYTHON:-python3}"
fi

"$PY" - >"$WORK/versions.json" <<'EOF'
import importlib.util, json
out = {}
if importlib.util.find_spec("torch"):
    import torch
    out["torch"] = torch.__version__
    out["torch_cuda"] = torch.version.cuda
    out["torch_sees_gpu"] = torch.cuda.is_available()
if importlib.util.find_spec("jax"):
    import jax
    out["jax"] = jax.__version__
    out["jax_devices"] = [str(d) for d in jax.devices()]
print(json.dumps(out))
EOF
echo "gpu.sh: $(cat "$WORK/versions.json")" >&2

# --- 2-4. benchmarks and tests --------------------------------------------------------------
COMMON=(--epochs "$EPOCHS" --device "$DEVICE" ${LIMIT:+--limit "$LIMIT"})
ROWS="softreg-torch,softreg-jax,jax-scan"
((BOOK)) && ROWS="$ROWS,book-pytorch"
phase recipe "$PY" "$REPO/bench/bench_recipe.py" "${COMMON[@]}" --rows "$ROWS" \
  --repeat "$REPEAT" --json "$WORK/recipe.json"
phase mlp "$PY" "$REPO/bench/bench_mlp.py" "${COMMON[@]}" --rows softreg-torch,softreg-jax \
  --json "$WORK/mlp.json"
SELECT="cuda or gpu"
if ((TESTS)); then
  # On the CPU there are no GPU cases: the dry check runs the torch and jax cases instead.
  [[ "$DEVICE" == cpu ]] && SELECT="test_backend and (torch or jax)"
  phase tests "$PY" -m pytest -q -p no:cacheprovider -m "not slow" -k "$SELECT" \
    --junitxml "$WORK/tests.xml" "$REPO/tests"
fi

# --- 5. the report --------------------------------------------------------------------------
(IFS=,; echo "{${PHASES[*]}}") >"$WORK/phases.json"
"$PY" "$REPO/bench/gpu_report.py" --work "$WORK" --json "$JSON" --device "$DEVICE" \
  --tests-k "$SELECT" ||
  FAILED+=("report")
if ((${#FAILED[@]})); then
  echo "gpu.sh: failed: ${FAILED[*]}" >&2
  exit 1
fi
