"""First-screen screenshots of built book pages at 1400 px and 400 px (headless Chromium), for the README.

    python tools/screens.py [--html _build/html] [--out book/_static/screens] [page ...]

Pages default to the verdict page and two chapters. Each page gives <page>-1400.png and <page>-400.png.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["status/verdicts", "affectgpt/mer_unibench", "gfs/tfi"]
SIZES = {1400: 900, 400: 860}  # width -> height (a laptop screen; a phone held upright)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pages", nargs="*", default=PAGES)
    parser.add_argument("--html", type=Path, default=ROOT / "_build" / "html")
    parser.add_argument("--out", type=Path, default=ROOT / "book" / "_static" / "screens")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-gpu"])
        for page in args.pages:
            for width, height in SIZES.items():
                tab = browser.new_page(viewport={"width": width, "height": height})
                tab.goto((args.html / f"{page}.html").as_uri(), wait_until="load")
                tab.wait_for_timeout(500)
                path = args.out / f"{page.replace('/', '-')}-{width}.png"
                tab.screenshot(path=str(path))
                tab.close()
                print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
        browser.close()


if __name__ == "__main__":
    main()
