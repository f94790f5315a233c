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


#: Chapters whose book copy was executed before the verdict contract (no summary box, old outputs), as
#: tests/core/test_chapters.py PRE_CONTRACT (empty since GFS's converged run). Strict xfails: a re-executed
#: chapter left here fails.
PRE_CONTRACT_PAGES: set[str] = set()


#: Chapters whose introduction pushes the summary box below the first screen (page -> reason; strict xfails). Empty
#: since the DyVM and R-MeeTo notebooks put the box right under the title and paper line, the introduction after it
#: (issue 15); a chapter listed here again must be fixed with its next paper run.
SUMMARY_BELOW_FOLD: dict[str, str] = {}


def marked(pages: list[str], known: dict[str, str] | None = None) -> list:
    """The pages as test parameters, the pre-contract ones (and ``known``: page -> reason) expected to fail."""
    import pytest

    known = known or {}
    params = []
    for p in pages:
        reason = "executed before the verdict contract" if p in PRE_CONTRACT_PAGES else known.get(p, "")
        params.append(pytest.param(p, id=p, marks=pytest.mark.xfail(bool(reason), strict=True, reason=reason)))
    return params


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
        # Offline, as a reader without the internet: every request that leaves the built book fails at once.
        context = chromium.new_context(viewport={"width": WIDE, "height": HEIGHT})
        context.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:") else route.abort())
        yield context
        context.close()
        chromium.close()


@pytest.fixture(scope="session")
def audit(browser):
    """audit(page) -> what ``AUDIT_JS`` (test_pages.py) reads from the page at 1400 px. Each page is loaded
    once per session, whatever the number of tests that look at it."""
    from .test_pages import AUDIT_JS

    seen = {}

    def _audit(page: str) -> dict:
        if page not in seen:
            tab = browser.new_page()
            tab.goto((HTML / f"{page}.html").as_uri(), wait_until="load", timeout=60_000)
            if tab.locator(".math").count():  # MathJax typesets after load
                try:
                    tab.wait_for_function("() => document.querySelectorAll('mjx-container').length > 0", timeout=15_000)
                except Exception:
                    pass  # the maths test reports it
            seen[page] = tab.evaluate(AUDIT_JS)
            tab.close()
        return seen[page]

    return _audit
