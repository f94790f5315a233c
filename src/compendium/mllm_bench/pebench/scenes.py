"""Fictitious persons x event scenes, rendered procedurally: the scaled-down PEBench (no downloads).

PEBench (arXiv 2503.12545) generated 200 fictitious persons x 40 event scenes = 8,000 FLUX images at
512 px, with GPT-4 text (names, profiles, one-sentence event descriptions with 10 keywords each). Here:

- **persons**: a fictitious name (syllables, so no real person is named) and a figure drawn from an
  identity code (skin tone, hair colour, hair style, eye colour, accessory, outfit colour); any two
  persons differ in at least two of the six;
- **events**: 40 everyday scenes (the names follow PEBench's App. Tables 6-8; the sentences are ours
  and the keywords are their content words, 4-6 each instead of PEBench's 10). A scene is a background gradient, a striped
  texture and three props, of which each image shows two at random places (so an event is spread
  over the image, not one patch);
- **images**: one person in one scene, at a random place, with pixel noise; every (person, event)
  pair is either a training image or a held-out image (the "generality" split);
- **real**: a second generator family (square faces, other names, scenes without texture) that the
  model also learns, the analogue of PEBench's real-world persons and events;
- **world facts**: object questions on person-free images ("what objects are there?", scored by the
  F1 of the objects named, so hallucinated objects count: a POPE-like probe; our tiny model could not
  learn POPE's yes/no form, which needs question-image binding, in the training budget).

Everything is seeded; the same seed gives the same pixels.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "EVENTS",
    "QUESTIONS",
    "IDK",
    "EVENT_ALIAS",
    "Person",
    "Event",
    "Sample",
    "World",
    "make_world",
    "render",
    "render_pope",
]

# Event names after PEBench App. Tables 6-8 (the first 28) plus 12 of ours; the sentences are ours, and an event's
# keywords are its sentence's content words (PEBench has 10 GPT-4-written keywords per event; ours are 4-6).
EVENTS: list[tuple[str, str]] = [
    ("media interview", "the person answers reporters at a media interview"),
    ("park jogging", "the person is jogging along a green park path"),
    ("farm visit", "the person visits a farm with cows and tractors"),
    ("dinner with friends", "the person shares dinner with friends at a table"),
    ("landmark visit", "the person poses before a famous stone landmark"),
    ("zoo visit", "the person watches giraffes and lions at the zoo"),
    ("shopping mall", "the person carries shopping bags through a busy mall"),
    ("public lecture", "the person gives a lecture to students in a hall"),
    ("gym workout", "the person lifts heavy weights during a gym workout"),
    ("dance event", "the person dances with a partner at an evening ball"),
    ("coffee shop reading", "the person reads a novel in a quiet coffee shop"),
    ("airport waiting", "the person waits for a delayed flight at the airport"),
    ("concert", "the person sings on stage at a loud rock concert"),
    ("beach day", "the person relaxes on warm sand near the ocean waves"),
    ("business meeting", "the person leads a business meeting around a desk"),
    ("museum tour", "the person studies old paintings on a museum tour"),
    ("car driving", "the person drives a red car along a highway"),
    ("snowshoeing", "the person walks on snowshoes across a snowy hill"),
    ("city bike ride", "the person rides a bicycle through city streets"),
    ("fashion show", "the person walks the runway at a fashion show"),
    ("fishing trip", "the person catches a fish from a wooden boat"),
    ("train station waiting", "the person waits on the platform of a train station"),
    ("charity event", "the person donates food at a charity event"),
    ("nature photography", "the person photographs wild birds with a camera"),
    ("library studying", "the person studies thick books in a silent library"),
    ("boat trip", "the person sails a small boat across a calm bay"),
    ("biking trail", "the person rides a mountain bike on a rocky trail"),
    ("city walk", "the person strolls past shops on a sunny city street"),
    ("cooking class", "the person chops vegetables at a cooking class"),
    ("garden work", "the person plants flowers in a backyard garden"),
    ("football match", "the person kicks a ball during a football match"),
    ("wedding ceremony", "the person celebrates a wedding under a white arch"),
    ("hiking summit", "the person reaches a mountain summit with a backpack"),
    ("art painting", "the person paints a canvas with bright colors"),
    ("market shopping", "the person buys fresh fruit at an outdoor market"),
    ("science lab", "the person mixes chemicals in a science lab"),
    ("birthday party", "the person blows candles on a birthday cake"),
    ("swimming pool", "the person swims laps in an indoor pool"),
    ("camping night", "the person sits by a bright campfire near a tent"),
    ("ice skating", "the person skates in circles on a frozen ice rink"),
]

STOPWORDS = {"the", "person", "a", "an", "at", "in", "on", "with", "to", "of", "by", "is", "and", "for", "through",
             "along", "across", "near", "under", "past", "during", "before", "around", "from", "into", "over"}


def keywords_of(description: str) -> tuple[str, ...]:
    """An event's keywords: the content words of its sentence, in order, without repeats."""
    return tuple(dict.fromkeys(w for w in description.split() if w not in STOPWORDS))


QUESTIONS = {"person": "who is this ?", "event": "what is happening ?"}
# SIU's "new, unseen concept" for an event (persons get an unused fictitious alias name instead).
EVENT_ALIAS = "the person is somewhere doing something"
IDK = {"person": "i do not know who this is", "event": "i do not know what is happening"}
POPE_QUESTION = "is there a {obj} ?"  # POPE's form (used for real POPE data)
OBJECTS_QUESTION = "what objects are there ?"  # the world-fact question of the scaled-down benchmark

_SYL = ["ka", "lo", "mi", "ren", "ta", "vo", "sel", "dan", "ri", "mo", "zu", "fen", "la", "tor", "qui", "bex",
        "nor", "vi", "sa", "gul", "pe", "hax", "yo", "dri"]
SKIN = [(0.96, 0.80, 0.69), (0.87, 0.67, 0.52), (0.72, 0.52, 0.38), (0.55, 0.38, 0.26), (0.40, 0.27, 0.18), (0.98, 0.88, 0.78)]
HAIR = [(0.1, 0.07, 0.05), (0.45, 0.3, 0.15), (0.9, 0.8, 0.4), (0.7, 0.2, 0.1), (0.6, 0.6, 0.6), (0.2, 0.3, 0.8)]
EYES = [(0.1, 0.3, 0.8), (0.2, 0.6, 0.2), (0.35, 0.2, 0.1), (0.05, 0.05, 0.05)]
SHIRTS = [(0.85, 0.1, 0.1), (0.1, 0.6, 0.15), (0.1, 0.2, 0.85), (0.95, 0.8, 0.1), (0.6, 0.1, 0.7), (0.1, 0.75, 0.8),
          (0.95, 0.5, 0.1), (0.95, 0.95, 0.95), (0.15, 0.15, 0.15)]
SHAPES = ["circle", "square", "triangle", "cross", "bar"]
COLOURS = {"red": (0.9, 0.1, 0.1), "green": (0.1, 0.75, 0.2), "blue": (0.15, 0.3, 0.95), "yellow": (0.95, 0.9, 0.1),
           "white": (0.97, 0.97, 0.97), "black": (0.05, 0.05, 0.05)}
# The world-fact (POPE-style) objects: one colour per shape, so a question names one object type.
POPE_OBJECTS = [("circle", "red"), ("square", "green"), ("triangle", "blue"), ("cross", "yellow"), ("bar", "white"),
                ("square", "black")]
BACKGROUNDS = [(0.55, 0.75, 0.95), (0.3, 0.6, 0.3), (0.85, 0.75, 0.55), (0.6, 0.3, 0.5), (0.25, 0.25, 0.4),
               (0.9, 0.6, 0.3), (0.5, 0.5, 0.5), (0.2, 0.5, 0.6), (0.75, 0.85, 0.6), (0.9, 0.9, 0.95)]


@dataclass(frozen=True)
class Person:
    name: str
    code: tuple[int, int, int, int, int, int]  # skin, hair colour, hair style, eye colour, accessory, outfit colour
    style: str = "pebench"  # or "real": the second generator family


@dataclass(frozen=True)
class Event:
    name: str
    description: str
    keywords: tuple[str, ...]
    background: tuple[int, int]  # two palette entries
    texture: tuple[int, int]  # orientation (0..3), frequency (0..1)
    props: tuple[tuple[str, str], ...]  # three (shape, colour) props


@dataclass
class Sample:
    """One image with the indices of what it shows and its split."""

    image: np.ndarray  # H x W x 3 in [0, 1]
    person: int  # index into World.persons / World.real_persons (-1 for world-fact images)
    event: int  # index into World.events (-1 for world-fact images)
    split: str  # "train" / "heldout"
    kind: str = "pebench"  # "pebench" / "real" / "pope"
    question: str = ""  # world-fact images only
    answer: str = ""


@dataclass
class World:
    persons: list[Person]
    events: list[Event]
    real_persons: list[Person]
    samples: list[Sample]
    pope: list[Sample]
    aliases: list[str]  # unused fictitious names (SIU's new concepts)
    image_size: int
    seed: int
    meta: dict = field(default_factory=dict)

    def of(self, kind: str = "pebench", split: str | None = None) -> list[Sample]:
        pool = self.pope if kind == "pope" else self.samples
        return [s for s in pool if s.kind == kind and (split is None or s.split == split)]


def _names(n: int, rng: random.Random, taken: set) -> list[str]:
    out = []
    while len(out) < n:
        first = "".join(rng.choice(_SYL) for _ in range(rng.randint(2, 3)))
        last = "".join(rng.choice(_SYL) for _ in range(rng.randint(2, 3)))
        name = f"{first} {last}"
        if name not in taken and first != last:
            taken.add(name)
            out.append(name)
    return out


def _codes(n: int, rng: random.Random, taken: set, min_distance: int = 2) -> list[tuple]:
    """Identity codes that differ from every other in at least ``min_distance`` of the six attributes
    (so no two persons differ only by, say, the eye colour)."""
    out = []
    tries = 0
    while len(out) < n:
        code = (rng.randrange(len(SKIN)), rng.randrange(len(HAIR)), rng.randrange(3), rng.randrange(len(EYES)),
                rng.randrange(3), rng.randrange(len(SHIRTS)))
        tries += 1
        far = all(sum(a != b for a, b in zip(code, other)) >= min_distance for other in taken)
        if code not in taken and (far or tries > 20000):
            taken.add(code)
            out.append(code)
    return out


def _events(n: int, rng: random.Random) -> list[Event]:
    if n > len(EVENTS):
        raise ValueError(f"at most {len(EVENTS)} events")
    props = [(s, c) for s in SHAPES for c in COLOURS]
    seen, out = set(), []
    for name, desc in EVENTS[:n]:
        kws = keywords_of(desc)
        while True:
            bg = (rng.randrange(len(BACKGROUNDS)), rng.randrange(len(BACKGROUNDS)))
            tex = (rng.randrange(4), rng.randrange(2))
            pr = tuple(rng.sample(props, 3))
            key = (bg, tex)
            if key not in seen:
                seen.add(key)
                break
        out.append(Event(name, desc, kws, bg, tex, pr))
    return out


# ------------------------------------------------------------------------------------ drawing


def _disc(img, cy, cx, r, colour, ry=None):
    h, w, _ = img.shape
    yy, xx = np.mgrid[0:h, 0:w]
    ry = r if ry is None else ry
    mask = ((yy - cy) / max(ry, 0.5)) ** 2 + ((xx - cx) / max(r, 0.5)) ** 2 <= 1.0
    img[mask] = colour


def _rect(img, y0, x0, y1, x1, colour):
    h, w, _ = img.shape
    img[max(0, int(y0)):min(h, int(y1)), max(0, int(x0)):min(w, int(x1))] = colour


def _prop(img, shape, colour, cy, cx, s):
    c = COLOURS[colour]
    if shape == "circle":
        _disc(img, cy, cx, s / 2, c)
    elif shape == "square":
        _rect(img, cy - s / 2, cx - s / 2, cy + s / 2, cx + s / 2, c)
    elif shape == "triangle":
        for i in range(int(s)):
            half = (i + 1) / 2
            _rect(img, cy - s / 2 + i, cx - half, cy - s / 2 + i + 1, cx + half, c)
    elif shape == "cross":
        _rect(img, cy - s / 2, cx - 1, cy + s / 2, cx + 1, c)
        _rect(img, cy - 1, cx - s / 2, cy + 1, cx + s / 2, c)
    elif shape == "bar":
        _rect(img, cy - 1, cx - s / 2 - 1, cy + 1, cx + s / 2 + 1, c)


def _background(event: Event, size: int, rng: np.random.Generator, textured: bool = True) -> np.ndarray:
    a, b = np.array(BACKGROUNDS[event.background[0]]), np.array(BACKGROUNDS[event.background[1]])
    t = np.linspace(0, 1, size)[:, None, None]
    img = np.broadcast_to(a * (1 - t) + b * t, (size, size, 3)).copy()
    if textured:
        yy, xx = np.mgrid[0:size, 0:size] / size
        angle = event.texture[0] * np.pi / 4
        freq = (3, 6)[event.texture[1]]
        wave = np.sin(2 * np.pi * freq * (np.cos(angle) * xx + np.sin(angle) * yy) + rng.uniform(0, 2 * np.pi))
        img += 0.12 * wave[..., None]
    return img


def _face(img, person: Person, cy: float, cx: float, s: float, rng: np.random.Generator):
    skin, hair, style, eyes, acc, outfit = person.code
    shirt = np.clip(np.array(SHIRTS[outfit]) + rng.normal(0, 0.05, 3), 0, 1)  # the outfit is part of the identity
    if person.style == "real":  # the second generator family: square heads, no torso outline
        _rect(img, cy - s / 2, cx - s / 2, cy + s / 2, cx + s / 2, SKIN[skin])
        _rect(img, cy + s / 2, cx - s / 2, cy + s, cx + s / 2, shirt)
    else:
        _rect(img, cy + s * 0.45, cx - s * 0.6, cy + s * 1.2, cx + s * 0.6, shirt)
        _disc(img, cy, cx, s / 2, SKIN[skin], ry=s * 0.55)
    if style == 0:  # a fringe
        _rect(img, cy - s * 0.6, cx - s / 2, cy - s * 0.25, cx + s / 2, HAIR[hair])
    elif style == 1:  # long, at the sides
        _rect(img, cy - s * 0.6, cx - s * 0.65, cy + s * 0.4, cx - s * 0.35, HAIR[hair])
        _rect(img, cy - s * 0.6, cx + s * 0.35, cy + s * 0.4, cx + s * 0.65, HAIR[hair])
        _rect(img, cy - s * 0.6, cx - s / 2, cy - s * 0.35, cx + s / 2, HAIR[hair])
    else:  # a tall crest
        _rect(img, cy - s * 0.9, cx - s * 0.2, cy - s * 0.3, cx + s * 0.2, HAIR[hair])
    ey = cy - s * 0.05
    for dx in (-s * 0.2, s * 0.2):
        _rect(img, ey - 1, cx + dx - 1, ey + 1, cx + dx + 1, EYES[eyes])
    if acc == 1:  # glasses bridge
        _rect(img, ey - 0.5, cx - s * 0.3, ey + 0.5, cx + s * 0.3, (0.05, 0.05, 0.05))
    elif acc == 2:  # beard / mouth band
        _rect(img, cy + s * 0.2, cx - s * 0.3, cy + s * 0.45, cx + s * 0.3, HAIR[hair])


def render(person: Person, event: Event, size: int, rng: np.random.Generator, *, noise: float = 0.03) -> np.ndarray:
    """One image: the event's scene (two of its three props at random places) and the person."""
    img = _background(event, size, rng, textured=person.style != "real")
    s_prop = max(3, size // 8)
    for shape, colour in [event.props[i] for i in rng.choice(3, 2, replace=False)]:
        _prop(img, shape, colour, rng.uniform(s_prop, size - s_prop), rng.uniform(s_prop, size - s_prop), s_prop)
    s = size * rng.uniform(0.36, 0.42)
    _face(img, person, rng.uniform(0.35, 0.5) * size, rng.uniform(0.3, 0.7) * size, s, rng)
    img += rng.normal(0, noise, img.shape)
    return np.clip(img, 0, 1).astype(np.float32)


def render_pope(size: int, rng: np.random.Generator, n_objects: int = 2) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """A person-free image with ``n_objects`` props on a plain gradient; returns it and its props."""
    a, b = np.array(BACKGROUNDS[rng.integers(len(BACKGROUNDS))]), np.array(BACKGROUNDS[rng.integers(len(BACKGROUNDS))])
    t = np.linspace(0, 1, size)[None, :, None]
    img = np.broadcast_to(a * (1 - t) + b * t, (size, size, 3)).copy()
    chosen = [POPE_OBJECTS[i] for i in rng.choice(len(POPE_OBJECTS), n_objects, replace=False)]
    s_prop = max(5, size // 4)
    for k, (shape, colour) in enumerate(chosen):
        _prop(img, shape, colour, rng.uniform(s_prop, size - s_prop), (k + 0.5) * size / n_objects, s_prop)
    img += rng.normal(0, 0.03, img.shape)
    return np.clip(img, 0, 1).astype(np.float32), chosen


def make_world(n_persons: int = 30, n_events: int = 12, *, image_size: int = 32, heldout_share: float = 0.25,
               n_real_persons: int = 6, n_real_events: int = 4, real_per_person: int = 10, n_pope: int = 300,
               seed: int = 0) -> World:
    """The scaled-down PEBench: ``n_persons`` x ``n_events`` images (one per pair; a share
    ``heldout_share`` of each person's events held out), real-family images (``n_real_persons`` other
    persons at ``n_real_events`` other events, ``world.events[n_events:]``: nothing a forget target
    shows) and world-fact images.

    Every person keeps at least one held-out event and every event at least one held-out person, so
    generality is measurable for any forget target."""
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    names_taken: set = set()
    codes_taken: set = set()
    persons = [Person(n, c) for n, c in zip(_names(n_persons, rng, names_taken), _codes(n_persons, rng, codes_taken))]
    real = [Person(n, c, "real") for n, c in zip(_names(n_real_persons, rng, names_taken),
                                                   _codes(n_real_persons, rng, codes_taken))]
    events = _events(n_events + n_real_events, rng)
    aliases = _names(n_persons, rng, names_taken)
    n_held = max(1, round(heldout_share * n_events))
    samples = []
    for p in range(n_persons):
        held = set(((np.arange(n_held) + p) % n_events).tolist())  # a rotating Latin design: balanced per event
        for e in range(n_events):
            samples.append(Sample(render(persons[p], events[e], image_size, nrng), p, e,
                                  "heldout" if e in held else "train"))
    for p in range(n_real_persons):
        for e in n_events + nrng.choice(n_real_events, real_per_person, replace=n_real_events < real_per_person):
            samples.append(Sample(render(real[p], events[int(e)], image_size, nrng), p, int(e), "train", "real"))
        for e in n_events + nrng.choice(n_real_events, 2, replace=n_real_events < 2):  # fresh renders: the test
            samples.append(Sample(render(real[p], events[int(e)], image_size, nrng), p, int(e), "heldout", "real"))
    pope = []
    for i in range(n_pope):  # "what objects are there ?" -> "red circle and green square" (left to right)
        img, objs = render_pope(image_size, nrng)
        answer = " and ".join(f"{colour} {shape}" for shape, colour in objs)
        pope.append(Sample(img, -1, -1, "heldout" if i % 5 == 4 else "train", "pope", OBJECTS_QUESTION, answer))
    return World(persons, events, real, samples, pope, aliases, image_size, seed, {"n_pebench_events": n_events})
