"""What a user types at the command line cannot damage the book or hide an error (issue 16).

Every test runs the toy chapter in a throw-away repository (``COMPENDIUM_ROOT``) with its own cache, so a
regression writes into a temporary book, never the real one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from compendium import runner
from compendium.cli import main as cli_main

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "toy.ipynb"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def toy_repo(tmp_path, monkeypatch):
    """A repository holding only the toy chapter (paper profile x: 3), with its own book and cache."""
    root = tmp_path / "repo"
    folder = root / "notebooks" / "toy"
    folder.mkdir(parents=True)
    shutil.copyfile(FIXTURE, folder / "toy.ipynb")
    (folder / "toy.paper.yaml").write_text("x: 3\n")
    (root / "book").mkdir()
    monkeypatch.setenv("COMPENDIUM_ROOT", str(root))
    monkeypatch.setenv("COMPENDIUM_CACHE", str(tmp_path / "cache"))
    return root


def _set_parameters_cell(notebook: Path, source: str) -> None:
    nb = nbformat.read(notebook, as_version=4)
    cell, = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    cell.source = source
    nbformat.write(nb, notebook)


# ------------------------------------------------------------------- 1. overrides never write book/


def test_override_or_ci_run_refuses_to_write_the_book(toy_repo, capsys):
    source = toy_repo / "notebooks" / "toy" / "toy.ipynb"
    t0 = time.perf_counter()
    assert cli_main(["run", "toy", "-p", "x", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--out" in err[0] and "book/" in err[0], err
    assert cli_main(["run", "toy", "--profile", "ci"]) == 2
    assert "--out" in capsys.readouterr().err
    assert time.perf_counter() - t0 < 10 and not list((toy_repo / "book").rglob("*.ipynb"))
    # An explicit --out inside book/ is the same thing.
    with pytest.raises(runner.ParameterError, match="does not write into book/"):
        runner.make_job(source, "paper", {"x": 2}, out_dir=toy_repo / "book" / "toy")
    with pytest.raises(runner.ParameterError, match="a batch does not write into book/"):
        runner.run_batch([{"target": "toy", "profile": "ci", "parameters": {}}], out_dir=toy_repo / "book" / "runs")
    # With --out the override runs; the paper profile alone still writes the book.
    assert runner.make_job(source, "ci", {"x": 2}, out_dir=toy_repo / "elsewhere").output.parent.name == "elsewhere"
    assert runner.make_job(source, "paper").output == toy_repo / "book" / "toy" / "toy.ipynb"


# ------------------------------------------------------------------- 2. every failure says why


def test_failure_prints_class_and_message_and_keeps_the_notebook_outside_the_book(toy_repo, capsys):
    (toy_repo / "notebooks" / "toy" / "toy.paper.yaml").write_text("x: 3\nfail: true\n")
    assert cli_main(["run", "toy", "--quiet"]) == 1
    captured = capsys.readouterr()
    assert "RuntimeError: asked to fail" in captured.err
    assert "RuntimeError: asked to fail" in captured.out  # the summary too
    kept = Path(re.search(r"failed notebook kept at (\S+)", captured.out).group(1))
    assert kept.is_file() and not kept.is_relative_to(toy_repo / "book")
    assert not list((toy_repo / "book").rglob("*.ipynb")) and not list((toy_repo / "book").rglob("*.json"))


def test_missing_data_inside_a_notebook_names_key_url_and_place(toy_repo, tmp_path, monkeypatch):
    notebook = toy_repo / "notebooks" / "toy" / "toy.ipynb"
    nb = nbformat.read(notebook, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(
        "from compendium.data import fetch\nfetch('emotion/mertools/MER2024/ov_store/check-openset.csv')"))
    nbformat.write(nb, notebook)
    monkeypatch.setenv("COMPENDIUM_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("COMPENDIUM_OFFLINE", "1")
    result = runner.run_notebook(runner.make_job(notebook, "ci", out_dir=tmp_path / "out"))
    assert result["status"] == "failed"
    error = result["error"]
    assert error.startswith("DataNotFoundError: data file 'emotion/mertools/MER2024/ov_store/check-openset.csv'")
    assert "https://raw.githubusercontent.com/zeroQiaoba/MERTools/" in error and "put it at" in error
    assert Path(result["failed_notebook"]).is_file()


def test_describe_failure_uses_papermill_ename_and_evalue():
    from papermill.exceptions import PapermillExecutionError

    exc = PapermillExecutionError(3, 4, "x", "ValueError", "\x1b[0;31mbad value\x1b[0m", ["tb"])
    assert str(exc).splitlines()[0] == ""  # why the old summaries were blank after the colon
    assert runner.describe_failure(exc) == "ValueError: bad value"
    assert runner.describe_failure(KeyError("k")) == "KeyError: 'k'"


# ------------------------------------------------------------------- 3. choices checked before a kernel


def test_parameter_choices_and_ranges_are_checked_before_a_kernel_starts(toy_repo, capsys):
    notebook = toy_repo / "notebooks" / "toy" / "toy.ipynb"
    _set_parameters_cell(notebook, "x: int = 2  # a number; range: 0..10\n"
                                   "sleep_s: float = 0.0  # seconds to sleep\n"
                                   "fail: bool = False  # raise on purpose\n"
                                   "label: str = 'toy'  # a name; choices: toy, other\n")
    t0 = time.perf_counter()
    assert cli_main(["run", "toy", "-p", "label", "nonsense", "--out", str(toy_repo / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "label" in err[0] and "choices: toy, other" in err[0]
    with pytest.raises(runner.ParameterError, match=r"x = 11 is outside its range 0..10"):
        runner.make_job(notebook, "ci", {"x": 11}, out_dir=toy_repo / "out")
    (toy_repo / "notebooks" / "toy" / "toy.paper.yaml").write_text("x: -1\n")  # a profile file is checked too
    with pytest.raises(runner.ParameterError, match="outside its range"):
        runner.make_job(notebook, "paper")
    assert time.perf_counter() - t0 < 10
    assert not (toy_repo / "out").exists() and not (toy_repo.parent / "cache" / "staging").exists()


def test_constraint_comments_parse():
    assert runner.parameter_constraints("rule; choices: best-on-test, last, best-mean") == {
        "choices": ["best-on-test", "last", "best-mean"]}
    assert runner.parameter_constraints("epochs 30..60 of the run; range: 0..1") == {"range": (0.0, 1.0)}
    assert runner.parameter_constraints("at least one; range: 1..") == {"range": (1.0, None)}
    assert runner.parameter_constraints("sizes; choices: 1, 2, 4") == {"choices": [1, 2, 4]}
    assert runner.parameter_constraints("epochs 30..60, no tags") == {}


def test_book_notebooks_declare_choices_and_reject_a_wrong_one(capsys, tmp_path):
    source = REPO / "notebooks" / "affectgpt" / "mer_unibench.ipynb"
    help_text = runner.declared_parameters(source)["checkpoint_rule"]["help"]
    assert runner.parameter_constraints(help_text) == {"choices": ["best-on-test", "last", "best-mean"]}
    t0 = time.perf_counter()
    assert cli_main(["run", "affectgpt/mer_unibench", "-p", "checkpoint_rule", "nonsense", "--out", str(tmp_path)]) == 2
    assert time.perf_counter() - t0 < 10 and "choices: best-on-test, last, best-mean" in capsys.readouterr().err
    for src in runner.discover("all"):  # every profile of every book notebook satisfies its declarations
        for profile in runner.PROFILES:
            try:
                params = runner.profile_parameters(src, profile)
            except runner.ParameterError:
                continue  # that notebook has no such profile
            runner.validate_parameters(src, params)


# ------------------------------------------------------------------- 6. interrupts, list, help


def test_ctrl_c_is_one_line_exit_130_and_leaves_nothing(toy_repo, tmp_path):
    out = tmp_path / "out"
    cache = tmp_path / "cache"
    cmd = [sys.executable, "-m", "compendium.cli", "run", "toy", "--profile", "ci", "--out", str(out),
           "-p", "sleep_s", "60", "--quiet"]
    proc = subprocess.Popen(cmd, env=dict(os.environ), start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not list((cache / "staging").glob("*")) and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(2)  # the kernel is in the cell
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    _, err = proc.communicate(timeout=240)  # a loaded CI machine shuts a kernel down slowly
    # The kernel shares the process group and may log its own interruption ("[IPKernelApp] ..." with a
    # traceback of ipykernel's frames): that is the kernel's record. Ours: one line, and no traceback
    # through the command line's own code.
    ours = [line for line in err.splitlines() if line.strip() == "interrupted"]
    ours += [line for line in err.splitlines() if "compendium/cli.py" in line or "compendium/runner.py" in line]
    assert proc.returncode == 130 and ours == ["interrupted"], err
    assert not list((cache / "staging").glob("*")) and not list(out.rglob("*.ipynb"))


@pytest.mark.parametrize("how", ["kernel_caught_it", "loop_swallowed_it"])
def test_an_interrupt_the_libraries_hide_still_exits_130_and_writes_nothing(toy_repo, tmp_path, monkeypatch, capsys, how):
    """The two ways the race above can end: ipykernel catches the SIGINT and the cell ends with a
    KeyboardInterrupt (papermill reports it as the cell's error), or the event loop swallows the parent's
    KeyboardInterrupt and papermill returns as if the notebook had finished."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    def fake_execute(source, output, **kwargs):
        Path(output).write_text(Path(source).read_text())
        if how == "kernel_caught_it":
            raise PapermillExecutionError(1, 1, "time.sleep(sleep_s)", "KeyboardInterrupt", "", [])
        runner.INTERRUPTED.set()  # what the command line's SIGINT handler records

    monkeypatch.setattr(pm, "execute_notebook", fake_execute)
    out = tmp_path / "out"
    assert cli_main(["run", "toy", "--profile", "ci", "--out", str(out), "--quiet"]) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == "interrupted"
    assert not list((tmp_path / "cache" / "staging").glob("*")) and not list(out.rglob("*.ipynb"))
    assert not list((tmp_path / "cache").rglob("*.results.json"))


def test_list_shows_every_profile_in_aligned_columns(capsys):
    assert cli_main(["list"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    rows = {line.split()[0]: line for line in lines[1:]}
    assert "paper" in rows["affectgpt/mer_unibench"] and "ci" in rows["affectgpt/mer_unibench"]
    assert "gpu" in rows["dyvm/dyvm"]
    starts = {line.index(line.split()[1]) for line in lines}
    assert len(starts) == 1, lines  # the profiles column starts at the same place on every line


def test_help_has_examples_and_no_markup():
    main_help = subprocess.run([sys.executable, "-m", "compendium.cli", "--help"], capture_output=True, text=True)
    assert main_help.returncode == 0 and "::" not in main_help.stdout and "``" not in main_help.stdout
    for command in ("list", "run", "batch", "build", "data", "status"):
        out = subprocess.run([sys.executable, "-m", "compendium.cli", command, "--help"], capture_output=True,
                             text=True).stdout
        assert "examples:" in out and f"compendium {command}" in out, command
        assert "``" not in out and "::" not in out, command
