"""Check the built HTML for broken internal links: every local href and src must exist.

    python docs/check_links.py docs/_build/html

A link to another page must name a file that was built, and a ``#fragment`` must name an id
in that page. External links (http, https, mailto) are not followed: the build is offline.
Exits 1, listing each broken link, if any is found.
"""

from __future__ import annotations

import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlsplit

EXTERNAL = ("http", "https", "mailto", "ftp", "data", "javascript")


class _Page(HTMLParser):
    """Collect one page's ids and the local links it makes."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for key in ("id", "name"):
            if values.get(key):
                self.ids.add(values[key] or "")
        for key in ("href", "src"):
            link = values.get(key)
            if link and not (tag == "link" and values.get("rel") in ("canonical",)):
                self.links.append(link)


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8", errors="replace"))
    return page


def broken_links(root: Path) -> list[str]:
    """Return ``"page: link"`` for every local link under ``root`` that leads nowhere."""
    # _static holds the theme's own templates, not pages
    pages = {p.resolve(): _parse(p) for p in root.rglob("*.html") if "_static" not in p.parts}
    broken = []
    for path, page in sorted(pages.items()):
        for link in page.links:
            if urlsplit(link).scheme in EXTERNAL or link.startswith("//"):
                continue
            target_part, fragment = urldefrag(link)
            target_part = unquote(urlsplit(target_part).path)
            target = (path.parent / target_part).resolve() if target_part else path
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{path.relative_to(root.resolve())}: {link}")
            elif fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else _parse(target).ids
                if unquote(fragment) not in ids:
                    broken.append(f"{path.relative_to(root.resolve())}: {link} (no such anchor)")
    return broken


def main(argv: list[str]) -> int:
    """Check the site at ``argv[0]`` and report; the exit status says whether all is well."""
    root = Path(argv[0] if argv else "docs/_build/html")
    broken = broken_links(root)
    for line in broken:
        print(f"broken link: {line}")
    pages = sum(1 for p in root.rglob("*.html") if "_static" not in p.parts)
    print(f"internal links: {pages} pages checked, {len(broken)} broken")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
