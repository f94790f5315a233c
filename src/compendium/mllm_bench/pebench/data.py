"""The real PEBench (Hugging Face ``xuzhaopan/PEBench``, apache-2.0) as a :class:`~.scenes.World`.

The dataset is an image folder (``imagefolder``, 8,000 images of 200 fictitious persons x 40 events)
with ``PEBench.csv`` (1.84 MB). Our machines cannot download it and **its columns are not
documented**, so the field names below are guesses (``DEFAULT_FIELDS``); a record without any of the
candidate keys raises an error that lists the keys it has, so the right names can be passed through
``fields=``. The per-person train/held-out split and the forget ratio are not published either: they
are parameters. Nothing here has been run on the real files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .scenes import Event, Person, Sample, World

__all__ = ["HUB_ID", "DEFAULT_FIELDS", "PEBenchNotFound", "load_records", "to_world"]

HUB_ID = "xuzhaopan/PEBench"
DEFAULT_FIELDS: dict[str, tuple[str, ...]] = {
    "image": ("image", "file_name", "image_path", "img"),
    "person": ("name", "person", "person_name", "identity", "character"),
    "event": ("event", "event_name", "scene", "event_id"),
    "description": ("description", "event_description", "caption", "event_desc"),
    "keywords": ("keywords", "event_keywords", "keyword"),
}


class PEBenchNotFound(FileNotFoundError):
    """The PEBench files are neither at the given path nor downloadable from here."""


def _message(source: str) -> str:
    return (
        f"PEBench not found at {source!r}. Download '{HUB_ID}' (apache-2.0) on a machine with internet, e.g. "
        f"`huggingface-cli download {HUB_ID} --repo-type dataset --local-dir PEBench`, and pass that folder "
        "(with PEBench.csv and the images) as data_source."
    )


def load_records(source: str | Path | None = None) -> list[dict]:
    """The dataset's rows through ``datasets``: a local folder (``imagefolder``; ``PEBench.csv`` joined
    on the file name when the folder has no ``metadata.csv``), or the hub id."""
    import datasets

    source = str(source or HUB_ID)
    path = Path(source).expanduser()
    try:
        if path.is_dir():
            ds = datasets.load_dataset("imagefolder", data_dir=str(path), split="train")
            rows = [dict(r) for r in ds]
            csv = path / "PEBench.csv"
            if csv.is_file() and not (path / "metadata.csv").is_file():
                import pandas as pd

                meta = pd.read_csv(csv)
                key = next((c for c in meta.columns if c in DEFAULT_FIELDS["image"]), None)
                if key is not None:
                    by_name = {Path(str(v)).name: r for v, r in zip(meta[key], meta.to_dict("records"))}
                    for r in rows:
                        fname = Path(getattr(r["image"], "filename", "") or "").name
                        r.update(by_name.get(fname, {}))
            return rows
        if "/" in source and not source.startswith((".", "/", "~")):
            return [dict(r) for r in datasets.load_dataset(source, split="train")]
    except Exception as err:
        raise PEBenchNotFound(_message(source) + f" ({type(err).__name__}: {err})") from err
    raise PEBenchNotFound(_message(source))


def _get(record: dict, what: str, fields: dict, required: bool = True):
    for key in fields.get(what, DEFAULT_FIELDS[what]):
        if key in record and record[key] is not None:
            return record[key]
    if required:
        raise KeyError(f"PEBench record has none of {list(fields.get(what, DEFAULT_FIELDS[what]))} for '{what}'; "
                       f"its keys are {sorted(record)}. Pass fields={{'{what}': ('<key>',)}}.")
    return None


def to_world(records: list[dict], *, fields: dict | None = None, heldout_share: float = 0.25, seed: int = 0,
             image_size: int = 336) -> World:
    """A :class:`World` from the rows: persons and events by their names, each person's events split
    into training and held-out images (``heldout_share``, a parameter: PEBench does not publish its
    split). The real-person and POPE sets are empty (PEBench does not ship them: give POPE separately)."""
    fields = fields or {}
    rng = np.random.default_rng(seed)
    persons: dict[str, int] = {}
    events: dict[str, Event] = {}
    event_index: dict[str, int] = {}
    raw = []
    for r in records:
        name = str(_get(r, "person", fields))
        ev = str(_get(r, "event", fields))
        if name not in persons:
            persons[name] = len(persons)
        if ev not in events:
            desc = _get(r, "description", fields, required=False) or ev
            kws = _get(r, "keywords", fields, required=False) or ()
            if isinstance(kws, str):
                kws = tuple(k.strip() for k in kws.replace(";", ",").split(",") if k.strip())
            events[ev] = Event(ev, str(desc), tuple(kws), (0, 0), (0, 0), ())
            event_index[ev] = len(event_index)
        raw.append((_get(r, "image", fields), persons[name], event_index[ev]))
    samples = []
    by_person: dict[int, list] = {}
    for img, p, e in raw:
        by_person.setdefault(p, []).append((img, e))
    for p, items in by_person.items():
        held = set(rng.choice(len(items), max(1, round(heldout_share * len(items))), replace=False).tolist())
        for i, (img, e) in enumerate(items):
            samples.append(Sample(_as_array(img), p, e, "heldout" if i in held else "train"))
    import random

    from .scenes import _names

    aliases = _names(len(persons), random.Random(seed), set(persons))  # SIU's unseen names
    return World([Person(n, (0,) * 6) for n in persons], list(events.values()), [], samples, [], aliases, image_size,
                 seed, {"source": "PEBench"})


def _as_array(image):
    """PIL images stay PIL (processors take them); paths are opened lazily by the processor's caller."""
    if isinstance(image, (str, Path)):
        from PIL import Image

        return Image.open(image).convert("RGB")
    return image
