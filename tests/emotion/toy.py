"""Hand-checkable toy wheels shared by the emotion tests.

Wheel A (1)::

    happy -- joyful  -- glad, cheerful
          `- content -- calm
    sad   -- lonely  -- isolated
          `- hurt    -- disappointed

Wheel B (2)::

    positive -- glad -- joyful
    negative -- hurt -- sad, lonely

Word forms: happiness -> happy, joy -> joyful, sadness -> sad, gladness -> {happy, glad}; every name maps to
itself. Synonyms (wheel words): blue -> {sad, calm}, glad -> {happy, joyful}. "neutral" and "angry" have no entry.
"""

from __future__ import annotations

from compendium.emotion.wheel import EmotionWheels, build_format_mapping, build_raw_mapping

WHEEL_A = {
    "happy": {"joyful": ["glad", "cheerful"], "content": ["calm"]},
    "sad": {"lonely": ["isolated"], "hurt": ["disappointed"]},
}
WHEEL_B = {
    "positive": {"glad": ["joyful"]},
    "negative": {"hurt": ["sad", "lonely"]},
}

FORMAT_TABLE = [
    ("happy", ["happy", "happiness"]),
    ("joyful", ["joy", "joyful"]),
    ("sad", ["sad", "sadness"]),
    ("glad", ["glad", "gladness"]),
    ("calm", ["calm"]),
    ("lonely", ["lonely"]),
    ("blue", ["blue"]),
    ("cheerful", ["cheerful"]),
    ("hurt", ["hurt"]),
]
# "gladness" is also listed as a form of "happy": a form shared by two names.
FORMAT_TABLE[0] = ("happy", ["happy", "happiness", "gladness"])

SYNONYM_RUNS = [
    [("happy", []), ("joyful", []), ("sad", ["blue"]), ("calm", ["blue"]), ("lonely", []), ("cheerful", [])],
    [("happy", ["glad"]), ("joyful", ["glad"]), ("hurt", [])],
]


def toy_wheels(trees=(WHEEL_A, WHEEL_B)) -> EmotionWheels:
    return EmotionWheels(
        trees=list(trees),
        format_mapping=build_format_mapping(FORMAT_TABLE),
        raw_mapping=build_raw_mapping(SYNONYM_RUNS),
    )
