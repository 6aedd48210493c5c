"""Sphinx configuration of softreg's documentation (built by ``bash scripts/docs.sh``)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))  # the tree's softreg, also when not installed
sys.path.insert(0, str(Path(__file__).resolve().parent / "_ext"))

import softreg  # noqa: E402

project = "softreg"
author = "softreg developers"
copyright = "softreg developers"
release = version = softreg.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_nb",
    "bench_tables",  # docs/_ext: writes benchmarks.rst from bench/results/*.json
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
# sphinx-gallery writes a notebook beside each example page: only its .rst is a page.
exclude_patterns = [
    "_build",
    "gallery",
    "**.ipynb_checkpoints",
    "auto_examples/*.ipynb",
    "auto_examples/**/*.ipynb",
]
templates_path = ["_templates"]

# -- API reference ---------------------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = False
autosummary_ignore_module_all = False  # a module page lists its __all__, re-exports included
# Names of softreg.__all__ get their page once, at the top level; module pages link there.
autosummary_context = {"toplevel": [n for n in softreg.__all__ if n != "__version__"]}
autodoc_default_options = {"members": False}
autodoc_typehints = "none"  # numpydoc's Parameters sections carry the types
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks: set[str] = set()
add_module_names = False

# -- Cross-links to the ecosystem ------------------------------------------------------------
# intersphinx needs each project's objects.inv from the web. The documentation builds
# offline (scripts/docs.sh, CI): there the mapping is empty and references to NumPy,
# scikit-learn, PyTorch and JAX stay plain text. SOFTREG_DOCS_INTERSPHINX=1 turns the links
# on where the network is reachable.
_INTERSPHINX = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable", None),
    "sklearn": ("https://scikit-learn.org/stable", None),
    "torch": ("https://docs.pytorch.org/docs/stable", None),
    "jax": ("https://docs.jax.dev/en/latest", None),
    "matplotlib": ("https://matplotlib.org/stable", None),
}
_ONLINE = os.environ.get("SOFTREG_DOCS_INTERSPHINX") == "1"
intersphinx_mapping = _INTERSPHINX if _ONLINE else {}
# With the inventories, numpydoc also turns parameter types into links (its aliases point
# into Python's and NumPy's documentation, which offline would be unresolved references).
numpydoc_xref_param_type = _ONLINE

# -- Gallery ---------------------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": ["gallery"],
    "gallery_dirs": ["auto_examples"],
    "filename_pattern": r"/plot_",  # run every plot_*.py at build time
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "image_scrapers": ("matplotlib", "softreg_docs.figure_scraper"),
    "matplotlib_animations": False,
    "show_memory": False,
    # the execution-times page loads DataTables from a CDN: the site must work offline
    "write_computation_times": False,
    "abort_on_example_error": True,
    "doc_module": ("softreg",),
    "backreferences_dir": "api/backrefs",
}

# -- MyST / notebooks ------------------------------------------------------------------------
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3
# The chapter's notebook (examples/softmax_regression.ipynb) is copied in and run at build
# time, so the page shows the outputs of this build's run (about 30 s).
# SOFTREG_DOCS_NOTEBOOK=off renders the notebook as stored instead.
NOTEBOOK = ROOT / "examples" / "softmax_regression.ipynb"
(Path(__file__).resolve().parent / "notebook").mkdir(exist_ok=True)
shutil.copyfile(NOTEBOOK, Path(__file__).resolve().parent / "notebook" / NOTEBOOK.name)
nb_execution_mode = "off" if os.environ.get("SOFTREG_DOCS_NOTEBOOK") == "off" else "force"
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_execution_show_tb = True

# -- HTML ------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"softreg {release}"
html_static_path = ["_static"]
html_css_files = ["softreg.css"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 5,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {"index": [], "from-the-book": [], "guarantees": [], "benchmarks": []}
html_theme_options["secondary_sidebar_items"] = {"**": ["page-toc"], "from-the-book": []}
html_show_sourcelink = False
# Light mode by default: the theme also needs a mode to start from on pages opened from disk.
html_context = {"default_mode": "light"}


def _skip_foreign_members(app, what, name, obj, skip, options):  # Sphinx's hook signature
    """Leave out what the estimators inherit from scikit-learn (documented there)."""
    module = getattr(obj, "__module__", None) or ""
    return True if module.startswith("sklearn") else skip


def setup(app):
    """Connect the build's hooks."""
    app.connect("autodoc-skip-member", _skip_foreign_members)
