"""The chapter as a notebook: examples/softmax_regression.ipynb runs top to bottom in a real
Jupyter kernel on the shared data."""

import os

import pytest
from _helpers import REPO


@pytest.mark.slow
def test_notebook_runs_top_to_bottom(data_root, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("SOFTREG_DATA", str(data_root))  # the kernel inherits the environment
    path = REPO / "examples" / "softmax_regression.ipynb"
    notebook = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    # the data grid, the live curves, two prediction grids, three report figures, three sweeps
    assert len(images) >= 10
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "EpochRecord(epoch=10" in text
    assert "overflow -> nan" in text  # exercise 1
    assert "definition:" in text and "index picking:" in text  # exercise 2
    assert "abstain below 0.9" in text and "expected-cost rule" in text  # exercise 3
    assert os.environ.get("SOFTREG_DATA") == str(data_root)
