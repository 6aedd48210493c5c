#!/usr/bin/env python
"""Run examples/softmax_regression.ipynb top to bottom and store it with its outputs.

A clean run: the stored outputs are cleared, the notebook is executed in a fresh Jupyter
kernel with the repository as its working directory, and written back in place. The data is
found as softreg finds it (``$SOFTREG_DATA``, its cache, Debian's packages).

    SOFTREG_DATA=/path/to/data python scripts/run_notebook.py [NOTEBOOK] [--timeout 900]

Needs nbformat, nbclient and ipykernel (the ``docs`` extra).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "examples" / "softmax_regression.ipynb"


def run(path: Path, timeout: int) -> float:
    """Execute the notebook at ``path`` in place; return the seconds it took."""
    import nbclient
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            cell.metadata.pop("execution", None)
    start = time.perf_counter()
    client = nbclient.NotebookClient(
        notebook,
        timeout=timeout,
        record_timing=False,  # no execution timestamps in the stored notebook
        kernel_name="python3",
        resources={"metadata": {"path": str(REPO)}},
    )
    client.execute()
    seconds = time.perf_counter() - start
    nbformat.write(notebook, path)
    return seconds


def main(argv: list[str] | None = None) -> int:
    """Run the notebook given (default: the chapter's) and report the time."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", nargs="?", type=Path, default=NOTEBOOK)
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    args = parser.parse_args(argv)
    seconds = run(args.notebook, args.timeout)
    print(f"{args.notebook}: executed in {seconds:.0f} s, outputs stored")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
