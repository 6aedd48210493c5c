"""Helpers for softreg's Sphinx build: a sphinx-gallery scraper for softreg's figures."""

from __future__ import annotations

from typing import Any


def figure_scraper(block: Any, block_vars: dict[str, Any], gallery_conf: dict[str, Any]) -> str:
    """Show every matplotlib figure a gallery block bound to a global name.

    softreg's ``plotting`` functions return ``matplotlib.figure.Figure`` objects made without
    pyplot, which sphinx-gallery's own matplotlib scraper does not see. An example shows a
    figure by assigning it (``fig = plotting.plot_curves(history)``); each figure is shown
    once, in the block that made it.
    """
    from matplotlib.figure import Figure
    from sphinx_gallery.scrapers import figure_rst

    seen = block_vars.setdefault("_softreg_seen_figures", [])
    new = [
        value
        for value in block_vars["example_globals"].values()
        if isinstance(value, Figure) and not any(value is old for old in seen)
    ]
    paths = []
    for fig, path in zip(new, block_vars["image_path_iterator"], strict=False):
        fig.savefig(path, dpi=110, bbox_inches="tight")
        paths.append(path)
        seen.append(fig)
    return figure_rst(paths, gallery_conf["src_dir"])
