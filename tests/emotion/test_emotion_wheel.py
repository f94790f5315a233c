"""Emotion wheels, word-form / synonym maps and the official label mapping (compendium.emotion.wheel)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from compendium.emotion.wheel import (
    EmotionWheels,
    build_format_mapping,
    build_raw_mapping,
    map_label_format,
    map_label_synonym,
    read_wheel,
    string_to_list,
    wheel_cluster_map,
)

from .toy import WHEEL_A, WHEEL_B, toy_wheels


# ----------------------------------------------------------------------------------------------------------------
# string_to_list: the official parser, quirk included
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, expected",
    [
        ("[happy, sad]", ["happy", "sad"]),
        ("['happy', 'sad']", ["happy", "sad"]),
        ("[ Happy ,  sad ,]", ["Happy", "sad"]),  # strips pieces, drops empties, keeps case
        ("abandon,abandons", ["abandon", "abandons"]),  # format.csv cells have no brackets
        ("[]", []),
        ("", []),
        # the quote split: one label with an apostrophe becomes two tokens
        ("[don't believe, doubt]", ["don", "t believe", "doubt"]),
        ("[\"don't believe\", 'doubt']", ["don", "t believe", "doubt"]),
    ],
)
def test_string_to_list(text, expected):
    assert string_to_list(text) == expected


def test_string_to_list_passthrough_and_missing():
    assert string_to_list(["a ", "b"]) == ["a ", "b"]  # lists are returned unchanged
    assert string_to_list(np.array(["x", "y"])) == ["x", "y"]
    assert string_to_list(float("nan")) == []
    assert string_to_list(None) == []


# ----------------------------------------------------------------------------------------------------------------
# Cluster maps and the three mappings on hand-made wheels
# ----------------------------------------------------------------------------------------------------------------
def test_cluster_map_levels():
    l1 = wheel_cluster_map(WHEEL_A, "level1")
    assert l1 == {
        "happy": "happy", "joyful": "happy", "glad": "happy", "cheerful": "happy", "content": "happy", "calm": "happy",
        "sad": "sad", "lonely": "sad", "isolated": "sad", "hurt": "sad", "disappointed": "sad",
    }
    l2 = wheel_cluster_map(WHEEL_A, "level2")
    # a root goes to its alphabetically first child: content < joyful, hurt < lonely
    assert l2["happy"] == "content" and l2["sad"] == "hurt"
    assert l2["glad"] == "joyful" and l2["calm"] == "content" and l2["joyful"] == "joyful"
    with pytest.raises(ValueError):
        wheel_cluster_map(WHEEL_A, "level3")


def test_cluster_map_later_duplicate_wins():
    tree = {"a": {"x": ["dup"]}, "b": {"y": ["dup", "z"]}}
    assert wheel_cluster_map(tree, "level1")["dup"] == "b"
    assert wheel_cluster_map(tree, "level2")["dup"] == "y"


def test_format_and_synonym_mappings():
    w = toy_wheels()
    assert w.format_mapping["gladness"] == ("glad", "happy")  # a form shared by two names, sorted
    assert w.raw_mapping["blue"] == ("calm", "sad")
    assert w.raw_mapping["glad"] == ("happy", "joyful")
    # M1 (case1): alphabetically first name; M2 (case2): then the first wheel word of its synonym set
    assert map_label_format("gladness", w.format_mapping) == "glad"
    assert map_label_synonym("gladness", w.format_mapping, w.raw_mapping) == "happy"
    assert map_label_format("unknown", w.format_mapping) == ""
    assert map_label_synonym("unknown", w.format_mapping, w.raw_mapping) == ""


@pytest.mark.parametrize(
    "label, wheel, level, expected",
    [
        ("joy", 1, "level1", "happy"),
        ("joy", 1, "level2", "joyful"),
        ("joy", 2, "level1", "positive"),
        ("joy", 2, "level2", "glad"),
        ("happy", 1, "level2", "content"),  # a root label -> sorted(children)[0]
        ("happy", 2, "level1", ""),  # not in wheel B
        # alphabetical first candidate: blue -> {calm, sad}; calm wins in wheel A (so blue -> happy!), while wheel B
        # has no calm and falls back to sad -> negative
        ("blue", 1, "level1", "happy"),
        ("blue", 2, "level1", "negative"),
        ("neutral", 1, "level1", ""),  # no form entry -> dropped
    ],
)
def test_map_label_wheel(label, wheel, level, expected):
    assert toy_wheels().map_label(label, wheel, level) == expected


def test_map_labels_sets():
    w = toy_wheels()
    assert w.map_labels("[Joy, calm, neutral]", "wheel", 1, "level1") == {"happy"}
    assert w.map_labels("[Joy, sadness]", "wheel", 1, "level2") == {"joyful", "hurt"}
    assert w.map_labels("[gladness, happiness]", "format") == {"glad", "happy"}
    assert w.map_labels("[gladness, happiness]", "synonym") == {"happy"}
    assert w.map_labels("", "wheel") == set()
    with pytest.raises(ValueError):
        w.map_labels("[joy]", "nope")


# ----------------------------------------------------------------------------------------------------------------
# Reading the file formats: tiny files in a tmp dir
# ----------------------------------------------------------------------------------------------------------------
def _write_wheel(path, tree, shout=False):
    rows = []
    for root, children in tree.items():
        first_root = True
        for level2, leaves in children.items():
            first_l2 = True
            for leaf in leaves:
                r = root.upper() if shout else root.title()
                rows.append({
                    "level1": r if first_root else None,  # merged cells are empty below their first row
                    "level2": f" {level2.title()} " if first_l2 else None,
                    "level3": f"{leaf.title()} ",
                })
                first_root = first_l2 = False
    pd.DataFrame(rows, columns=["level1", "level2", "level3"]).to_excel(path, index=False)


@pytest.fixture
def tiny_wheel_dir(tmp_path):
    for k, tree in enumerate([WHEEL_A, WHEEL_B, WHEEL_A, WHEEL_B, WHEEL_A], start=1):
        _write_wheel(tmp_path / f"wheel{k}.xlsx", tree, shout=(k == 3))
    runs = {
        1: [("Sad", " Blue, Down "), ("calm", "blue"), ("happy", None)],
        2: [("happy", "glad"), ("Joyful", "Glad")],
    }
    data = {}
    for k in range(1, 9):
        pairs = runs.get(k, runs[2])
        pairs = pairs + [(None, None)] * (3 - len(pairs))
        data[f"word_run{k}"] = [p[0] for p in pairs]
        data[f"synonym_run{k}"] = [p[1] for p in pairs]
    pd.DataFrame(data).to_excel(tmp_path / "synonym.xlsx", index=False)
    pd.DataFrame({
        "name": ["sad", "happy", "glad", "null"],
        "format": ["sad,sadness,sadly", "happy,happiness", "glad,gladness", ""],
    }).to_csv(tmp_path / "format.csv", index=False)
    return tmp_path


def test_read_wheel_forward_fills_and_normalises(tiny_wheel_dir):
    assert read_wheel(tiny_wheel_dir / "wheel1.xlsx") == WHEEL_A
    assert read_wheel(tiny_wheel_dir / "wheel2.xlsx") == WHEEL_B
    assert read_wheel(tiny_wheel_dir / "wheel3.xlsx") == WHEEL_A  # upper-case roots are lower-cased


def test_from_dir_tiny(tiny_wheel_dir):
    w = EmotionWheels.from_dir(tiny_wheel_dir)
    assert w.num_wheels == 5
    assert w.words == set(WHEEL_A_WORDS) | set(WHEEL_B_WORDS)
    # synonyms lower-cased and stripped, merged over runs; NaN rows skipped
    assert w.raw_mapping["blue"] == ("calm", "sad")
    assert w.raw_mapping["down"] == ("sad",)
    assert w.raw_mapping["glad"] == ("happy", "joyful")
    assert "happy" in w.raw_mapping  # a wheel word maps to itself even with no synonyms
    # format.csv read as text: the word "null" stays a word; an empty format cell gives only the self-mapping
    assert w.format_mapping["null"] == ("null",)
    assert w.format_mapping["sadly"] == ("sad",)
    assert w.map_label("sadly", 2, "level1") == "negative"
    assert w.map_label("gladness", 1, "level1") == "happy"
    assert EmotionWheels.from_dir(tiny_wheel_dir) is w  # cached per path


def test_from_dir_synonym_runs_subset(tiny_wheel_dir):
    only_first = EmotionWheels.from_dir(tiny_wheel_dir, synonym_runs=(1,))
    assert only_first.raw_mapping["blue"] == ("calm", "sad") and "glad" not in only_first.raw_mapping
    assert EmotionWheels.from_dir(tiny_wheel_dir, synonym_runs=(2,)).raw_mapping["glad"] == ("happy", "joyful")
    assert EmotionWheels.from_dir(tiny_wheel_dir, synonym_runs=(2, 1)) is EmotionWheels.from_dir(
        tiny_wheel_dir, synonym_runs=(1, 2))  # one cache entry per set of runs
    assert only_first.format_mapping == EmotionWheels.from_dir(tiny_wheel_dir).format_mapping
    for bad in ((), (0,), (9,)):
        with pytest.raises(ValueError, match="synonym_runs"):
            EmotionWheels.from_dir(tiny_wheel_dir, synonym_runs=bad)


WHEEL_A_WORDS = ["happy", "joyful", "glad", "cheerful", "content", "calm", "sad", "lonely", "isolated", "hurt",
                 "disappointed"]
WHEEL_B_WORDS = ["positive", "glad", "joyful", "negative", "hurt", "sad", "lonely"]


def test_build_maps_are_unions():
    fm = build_format_mapping([("a", ["x", "y"]), ("b", ["y"])])
    assert fm == {"x": ("a",), "y": ("a", "b"), "a": ("a",), "b": ("b",)}
    rm = build_raw_mapping([[("w", ["s"])], [("v", ["s", "t"])]])
    assert rm == {"w": ("w",), "s": ("v", "w"), "v": ("v",), "t": ("v",)}


# ----------------------------------------------------------------------------------------------------------------
# The official files: counts and documented oddities (emotion.md section 1.3)
# ----------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def wheels(shared_data):
    return EmotionWheels.from_dir(shared_data / "emotion/affectgpt/emotion_wheel")


def test_official_counts(wheels):
    assert len(wheels.words) == 253
    assert len(wheels.raw_mapping) == 1255
    assert len(wheels.format_mapping) == 7386
    assert [len(t) for t in wheels.trees] == [6, 7, 6, 6, 6]
    assert set(wheels.trees[0]) == {"mad", "disgusted", "sad", "happy", "surprised", "scared"}
    assert set(wheels.trees[3]) == {"joy", "genius", "anger", "sad", "fear", "disgust"}


def test_official_oddities(wheels):
    assert [wheels.map_label("neutral", k) for k in range(1, 6)] == [""] * 5
    assert [wheels.map_label("fear", k) for k in range(2, 6)] == ["happy", "joyful", "genius", "joyful"]
    assert wheels.map_label("fear", 1) == "scared"
    assert wheels.map_label("surprise", 5) == ""
    assert all(wheels.map_label("surprise", k) for k in range(1, 5))
    # the duplicate in wheel 2 (under disgusted/disappointed and sad/hurt): the later row wins
    assert wheels.cluster_map(2, "level1")["disappointed"] == "sad"
