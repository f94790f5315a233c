"""Every page of the built book as a reader sees it in Chromium, offline: the answer on the first screen,
nothing but the answer around it, links that resolve, maths served with the book, and a verdict page
whose counts are the results files'. One test per page and check, so a failure names the page."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlparse

import pytest

from compendium import launch, verdict_page, verdicts

from .conftest import HEIGHT, HTML, ROOT, SUMMARY_BELOW_FOLD, chapter_pages, marked, toc_pages

# Read once per page: elements wider than the article outside any box that scrolls or clips them, the
# summary box's top, outputs, links, images, scripts, maths, and the verdict page's first table.
AUDIT_JS = """() => {
  const article = document.querySelector('article.bd-article') || document.body;
  const limit = article.getBoundingClientRect().right + 2;
  const wide = [];
  for (const el of article.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.right <= limit) continue;
    let boxed = false;
    for (let a = el.parentElement; a && a !== article.parentElement; a = a.parentElement) {
      const ox = getComputedStyle(a).overflowX;
      if (ox === 'auto' || ox === 'scroll' || ox === 'hidden') { boxed = true; break; }
    }
    if (!boxed) wide.push(el.tagName.toLowerCase() + '.' + el.className + ': ' + (el.textContent || '').trim().slice(0, 60));
  }
  const box = document.querySelector('.cv-summary');
  return {
    page_width: document.documentElement.scrollWidth, view_width: window.innerWidth, wide: wide.slice(0, 5),
    summary_top: box ? box.getBoundingClientRect().top + window.scrollY : null,
    stderr: document.querySelectorAll('.output.stderr, .stderr').length,
    injected: document.querySelectorAll('.tag_injected-parameters').length,
    outputs: [...document.querySelectorAll('.cell_output, .output')].map(e => e.innerText).join('\\n'),
    text: article.innerText,
    hrefs: [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href')),
    images: [...document.querySelectorAll('img')].map(i => [i.getAttribute('src'), i.naturalWidth]),
    scripts: [...document.scripts].map(s => s.src).filter(Boolean),
    maths: document.querySelectorAll('.math').length, typeset: document.querySelectorAll('mjx-container').length,
    github: [...document.querySelectorAll('a[href*="github"]')].map(a => a.href),
    rows: [...document.querySelectorAll('#cv-paper-rows tbody tr')].map(tr => [...tr.querySelectorAll('td')].map(td => td.innerText.trim())),
    figure_heights: [...document.querySelectorAll('figure img')].map(i => i.getBoundingClientRect().height),
  };
}"""
PROGRESS = re.compile(r"\d{1,3}%\|.*\||it/s\]|\bNBVAL_[A-Z_]+")
# Folders of the machine that ran the notebook (a reader has none of them); /tmp/... in a command line is an example.
MACHINE_PATH = re.compile(r"(?<![\w.])/(?:work|root|home)/[\w./-]+")


@pytest.mark.parametrize("page", toc_pages())
def test_no_horizontal_overflow_at_1400px(audit, page):
    got = audit(page)
    assert got["page_width"] <= got["view_width"] and not got["wide"], \
        f"{page}: wider than the page ({got['page_width']} px in {got['view_width']} px): {got['wide']}"


@pytest.mark.parametrize("page", marked(chapter_pages(), SUMMARY_BELOW_FOLD))
def test_chapter_opens_with_its_summary_box(audit, page):
    top = audit(page)["summary_top"]
    assert top is not None, f"{page}: no summary box (.cv-summary): re-execute the chapter under the verdict contract"
    assert top < HEIGHT, f"{page}: the summary box starts at {top:.0f} px, below the first screen ({HEIGHT} px)"


@pytest.mark.parametrize("page", marked(toc_pages()))
def test_no_stderr_progress_markers_or_machine_paths(audit, page):
    got = audit(page)
    problems = [f"{got['stderr']} stderr outputs"] if got["stderr"] else []
    problems += [f"progress or test marker: {m.group(0)[:60]!r}" for m in PROGRESS.finditer(got["outputs"])][:3]
    problems += [f"machine path: {m.group(0)!r}" for m in MACHINE_PATH.finditer(got["text"])][:3]
    if got["injected"]:
        problems.append("papermill's injected-parameters cell is shown")
    assert not problems, f"{page}: " + "; ".join(problems)


def _unresolved(page: str, href: str) -> str | None:
    """None when an internal link or image resolves in the built book; else what is missing."""
    url = urlparse(href)
    if url.scheme in ("http", "https", "mailto", "javascript", "data") or href.startswith("//"):
        return None
    target = ((HTML / page).parent / unquote(url.path)).resolve() if url.path else HTML / f"{page}.html"
    if target.is_dir():
        target = target / "index.html"
    if not target.exists():
        return f"{href} (missing)"
    if url.fragment and target.suffix == ".html":
        if f'id="{unquote(url.fragment)}"' not in target.read_text(errors="replace"):
            return f"{href} (no #{url.fragment} in {target.name})"
    return None


@pytest.mark.parametrize("page", toc_pages())
def test_internal_links_and_images_resolve(audit, page):
    got = audit(page)
    broken = [b for b in (_unresolved(page, h) for h in got["hrefs"]) if b]
    broken += [f"image {src} does not load" for src, width in got["images"] if not width]
    assert not broken, f"{page}: " + "; ".join(broken[:8])


@pytest.mark.parametrize("page", toc_pages())
def test_maths_offline_and_one_repository_url(audit, page):
    got = audit(page)
    remote = [s for s in got["scripts"] if "mathjax" in s.lower() and not s.startswith("file:")]
    assert not remote, f"{page}: MathJax from the network: {remote}"
    assert not got["maths"] or got["typeset"], f"{page}: {got['maths']} formulas, none typeset offline"
    url = launch.repository_url(ROOT)
    others = [h for h in got["github"] if "github.com" in h and urlparse(url).path.strip("/") not in h]
    assert not others, f"{page}: links to another repository than {url} (_config.yml): {others[:3]}"


def test_verdict_page_counts_are_the_results_files(audit):
    got = audit("status/verdicts")
    assert got["rows"], "the verdict page has no per-paper table (#cv-paper-rows)"
    expected = verdict_page.page_rows(verdicts.collect(ROOT / "book")).data.astype(str).values.tolist()
    assert got["rows"] == expected, "the verdict page's counts are not the results files': re-execute status/verdicts"
    assert got["figure_heights"] and max(got["figure_heights"]) <= HEIGHT, "the verdict matrix is taller than a screen"
