"""A Sphinx extension (``_config.yml``: ``sphinx.extra_extensions``) that marks, when the book is built,
each chapter's summary box as up to date or stale: the same answer as ``compendium status --book`` (the
fingerprint of the notebook, its parameters and the package code and data it reads, against the one
stored when it was executed).

The summary box (:func:`compendium.notebook.summary_box`) leaves an empty ``<span class="cv-stale">``;
this fills it on the rendered page only, so the stored notebook does not change with the build.
"""

from __future__ import annotations

import html
import json
import subprocess
import sys
from pathlib import Path

__all__ = ["mark", "setup"]

PLACEHOLDER = '<span class="cv-stale"></span>'


def mark(body: str, freshness: str | None) -> str:
    """The page body with its summary box's placeholder filled from a ``status --book`` answer."""
    if PLACEHOLDER not in body or freshness is None:
        return body
    if freshness == "yes":
        text = ' <span class="cv-stale cv-fresh">Up to date with the code and data it depends on.</span>'
    else:
        why = ("the code or data it depends on changed since this run" if freshness.startswith("no")
               else f"freshness {freshness}")
        text = (' <span class="cv-stale" style="background:#fee08b;padding:0 4px;border-radius:3px">'
                f'<b>Stale</b>: {html.escape(why)} (<code>compendium status --book</code>).</span>')
    return body.replace(PLACEHOLDER, text, 1)


def _freshness() -> dict[str, str]:
    """notebook -> its "up to date" answer, asked of ``compendium status --book --json`` itself."""
    exe = Path(sys.executable).with_name("compendium")
    out = subprocess.run([str(exe) if exe.exists() else "compendium", "status", "--book", "--json"],
                         capture_output=True, text=True, check=True, timeout=600)
    return {row["notebook"]: row["up to date"] for row in json.loads(out.stdout)}


def setup(app):
    answers: dict[str, str] = {}

    def on_page(app, pagename, templatename, context, doctree):
        if "body" not in context:
            return
        if not answers:
            try:
                answers.update(_freshness())
            except Exception as exc:  # the build goes on; the box then says nothing about freshness
                answers["_error"] = str(exc)
        context["body"] = mark(context["body"], answers.get(pagename))

    app.connect("html-page-context", on_page)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
