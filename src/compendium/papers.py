"""The compendium's index of papers (``papers.yaml`` beside this module): key, title, arXiv id, domain,
notebooks and official repository at the commit the chapter read. ``compendium list``, the verdict page
and the README's table read it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml

__all__ = ["Paper", "index", "get", "keys", "markdown_table"]


@dataclass(frozen=True)
class Paper:
    key: str
    title: str
    arxiv: str
    domain: str
    notebooks: tuple[str, ...]
    repository: str | None  # "owner/name@commit", or None where no official code is public

    @property
    def arxiv_url(self) -> str:
        return f"https://arxiv.org/abs/{self.arxiv}"


@lru_cache(maxsize=None)
def index() -> tuple[Paper, ...]:
    raw = yaml.safe_load(resources.files(__package__).joinpath("papers.yaml").read_text())
    out = []
    for p in raw["papers"]:
        out.append(Paper(p["key"], p["title"], str(p["arxiv"]), p["domain"], tuple(p["notebooks"]), p.get("repository")))
    return tuple(out)


def keys() -> list[str]:
    return [p.key for p in index()]


def get(key: str) -> Paper:
    for p in index():
        if p.key == key:
            return p
    raise KeyError(f"unknown paper {key!r}; the index has {keys()}")


def markdown_table() -> str:
    """The README's table of papers, generated from the index (a test holds the README to it)."""
    lines = ["| key | paper | arXiv | chapter notebooks | official code |", "|---|---|---|---|---|"]
    for p in index():
        repo = f"`{p.repository.split('@')[0]}` @ `{p.repository.split('@')[1][:10]}`" if p.repository else "none public"
        nbs = ", ".join(f"`notebooks/{p.key}/{nb}.ipynb`" for nb in p.notebooks)
        lines.append(f"| `{p.key}` | {p.title} | [{p.arxiv}]({p.arxiv_url}) | {nbs} | {repo} |")
    return "\n".join(lines)
