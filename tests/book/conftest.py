"""The built book in headless Chromium (Debian's package, driven by playwright; scripts/setup.sh installs it).

These tests read ``_build/html`` (``compendium build --no-run`` makes it; scripts/test.sh builds it first)
and skip, saying why, when the book is not built or Chromium is missing.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
HTML = Path(os.environ.get("COMPENDIUM_BOOK_HTML", ROOT / "_build" / "html"))
WIDE, NARROW, HEIGHT = 1400, 400, 900


def toc_pages() -> list[str]:
    """Every page of the table of contents, as its path without suffix (``gfs/gfs``)."""
    toc = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())
    pages = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                pages.append(entry["file"])
            walk(entry.get("sections"))
            walk(entry.get("chapters"))

    walk(toc.get("parts"))
    walk(toc.get("chapters"))
    return pages


def chapter_pages() -> list[str]:
    """Pages made from an executed notebook that writes results: each opens with a summary box."""
    return [p for p in toc_pages() if (ROOT / "book" / f"{p}.ipynb").exists() and p != "status/verdicts"]


def chromium_path() -> str | None:
    return os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def browser():
    if not (HTML / "index.html").exists():
        pytest.skip(f"the book is not built ({HTML}): run compendium build --no-run")
    exe = chromium_path()
    if exe is None:
        pytest.skip("no chromium: apt-get install chromium (scripts/setup.sh does, as root)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the test extra)")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-gpu"])
        yield chromium
        chromium.close()


@pytest.fixture
def open_page(browser):
    """open_page('gfs/gfs', width=1400) -> a loaded playwright page (closed after the test)."""
    opened = []

    def _open(page: str, width: int = WIDE, height: int = HEIGHT):
        tab = browser.new_page(viewport={"width": width, "height": height})
        tab.goto((HTML / f"{page}.html").as_uri(), wait_until="load")
        tab.wait_for_timeout(300)  # MathJax typesets after load
        opened.append(tab)
        return tab

    yield _open
    for tab in opened:
        tab.close()
