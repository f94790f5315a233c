"""The papermill runner: parameters, provenance, skipping, the CLI, dask batches that resume."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import yaml

from compendium import runner
from compendium.cli import main as cli_main

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "toy.ipynb"


@pytest.fixture
def chapter(tmp_path):
    """A copy of the toy notebook as chapter 'toy' with a paper profile."""
    folder = tmp_path / "notebooks" / "toy"
    folder.mkdir(parents=True)
    source = folder / "toy.ipynb"
    shutil.copyfile(FIXTURE, source)
    (folder / "toy.paper.yaml").write_text("x: 3\n")
    return source


def test_profiles_and_validation(chapter):
    assert runner.profile_parameters(chapter, "ci") == {}
    assert runner.profile_parameters(chapter, "paper") == {"x": 3}
    with pytest.raises(runner.ParameterError, match="no 'gpu' profile"):
        runner.profile_parameters(chapter, "gpu")
    with pytest.raises(runner.ParameterError, match="unknown parameter.*epochs.*valid: x, sleep_s, fail, label"):
        runner.make_job(chapter, "ci", {"epochs": 3})
    with pytest.raises(runner.ParameterError, match="x must be int"):
        runner.make_job(chapter, "ci", {"x": "three"})


def test_run_records_provenance_writes_results_and_skips(chapter, tmp_path):
    out = tmp_path / "book" / "toy"
    job = runner.make_job(chapter, "paper", out_dir=out)
    first = runner.run_notebook(job)
    assert first["status"] == "ok", first
    nb = nbformat.read(out / "toy.ipynb", as_version=4)
    meta = nb.metadata["compendium"]
    assert meta["profile"] == "paper" and meta["parameters"] == {"x": 3}
    assert meta["versions"]["torch"].startswith("2.13") and meta["hardware"]["cpu_count"] >= 1
    assert "Run provenance" in nb.cells[-1].source
    results = json.loads((out / "toy.results.json").read_text())
    assert results["profile"] == "paper" and results["cells"][0]["verdict"] == "differs"  # 9 vs 4
    assert (out / "toy.runs.csv").read_text() == "x\n3\n"  # a side file joins the book with the results
    assert runner.run_notebook(job)["status"] == "skipped"
    changed = runner.make_job(chapter, "paper", {"x": 2}, out_dir=out)
    second = runner.run_notebook(changed)
    assert second["status"] == "ok"
    assert json.loads((out / "toy.results.json").read_text())["cells"][0]["verdict"] == "exact"


def test_provenance_names_the_commit_that_ran_not_one_made_during_the_run(chapter, tmp_path, monkeypatch):
    import papermill

    head = {"commit": "before", "status": ""}
    monkeypatch.setattr(runner, "_git", lambda *args: head["commit"] if args[0] == "rev-parse" else head["status"])
    execute = papermill.execute_notebook

    def execute_then_commit(*args, **kwargs):  # a commit (and an uncommitted edit) while the notebook runs
        out = execute(*args, **kwargs)
        head.update(commit="after", status=" M src/compendium/x.py")
        return out

    monkeypatch.setattr(papermill, "execute_notebook", execute_then_commit)
    out = tmp_path / "book" / "toy"
    assert runner.run_notebook(runner.make_job(chapter, "paper", out_dir=out))["status"] == "ok"
    meta = nbformat.read(out / "toy.ipynb", as_version=4).metadata["compendium"]
    assert (meta["commit"], meta["dirty"]) == ("before", False)


def test_failed_run_keeps_last_good_output(chapter, tmp_path):
    out = tmp_path / "book" / "toy"
    runner.run_notebook(runner.make_job(chapter, "ci", out_dir=out))
    good, good_results = (out / "toy.ipynb").read_bytes(), (out / "toy.results.json").read_bytes()
    good_side = (out / "toy.runs.csv").read_bytes()
    # fails after saving its results (x = 3 would give another verdict): the book keeps the old ones
    res = runner.run_notebook(runner.make_job(chapter, "ci", {"fail": True, "x": 3}, out_dir=out))
    assert res["status"] == "failed" and "asked to fail" in res["error"]
    assert (out / "toy.ipynb").read_bytes() == good
    assert (out / "toy.results.json").read_bytes() == good_results
    assert (out / "toy.runs.csv").read_bytes() == good_side
    assert (out / "toy.failed.ipynb").exists() and sorted(p.name for p in out.glob("*.results.json")) == [
        "toy.results.json"]


def test_cli_bad_parameter_is_one_clear_line(chapter, capsys):
    assert cli_main(["run", str(chapter), "--profile", "ci", "-p", "nope", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "nope" in err[0]


def test_cli_help_answers():
    out = subprocess.run([sys.executable, "-m", "compendium.cli", "run", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--profile" in out.stdout and "paper" in out.stdout


def _grid(tmp_path, chapter, sets):
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({"notebooks": [str(chapter)], "profile": "ci", "parameter_sets": sets}))
    return grid


def test_batch_failure_does_not_stop_the_rest_and_rerun_resumes(chapter, tmp_path):
    sets = [{"x": 1}, {"x": 2}, {"fail": True}]
    runs = runner.load_grid(_grid(tmp_path, chapter, sets))
    out = tmp_path / "runs"
    results = runner.run_batch(runs, out_dir=out, workers=2, progress=False)
    assert sorted(r["status"] for r in results) == ["failed", "ok", "ok"]
    # The summary names runs by their parameters and says why one failed and where its notebook is.
    failed, = [r for r in results if r["status"] == "failed"]
    assert failed["label"] == "toy/toy [ci] fail=True" and failed["error"] == "RuntimeError: asked to fail"
    assert Path(failed["failed_notebook"]).is_file() and Path(failed["failed_notebook"]).is_relative_to(out)
    assert sorted(r["label"] for r in results if r["status"] == "ok") == ["toy/toy [ci] x=1", "toy/toy [ci] x=2"]
    done = sorted(out.glob("*/DONE.json"))
    assert len(done) == 2
    stamps = [p.stat().st_mtime_ns for p in done]
    again = runner.run_batch(runs[:2], out_dir=out, workers=1, progress=False)
    assert [r["status"] for r in again] == ["done earlier", "done earlier"]
    assert [p.stat().st_mtime_ns for p in done] == stamps


def test_killed_batch_resumes_without_repeating_finished_runs(chapter, tmp_path):
    sets = [{"x": 1, "sleep_s": 0.0}, {"x": 2, "sleep_s": 0.0}, {"x": 3, "sleep_s": 60.0}]
    grid = _grid(tmp_path, chapter, sets)
    out = tmp_path / "runs"
    cmd = [sys.executable, "-m", "compendium.cli", "batch", str(grid), "--out", str(out), "--workers", "2", "--quiet"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while len(list(out.glob("*/DONE.json"))) < 2 and time.time() < deadline:
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole batch, workers included
    proc.wait()
    done = sorted(out.glob("*/DONE.json"))
    assert len(done) == 2, "two quick runs should have finished before the kill"
    stamps = {p: p.stat().st_mtime_ns for p in done}
    # Rerun with the slow run made quick: only it executes.
    sets[2]["sleep_s"] = 0.0
    grid = _grid(tmp_path, chapter, sets)
    res = subprocess.run(cmd[:4] + [str(grid)] + cmd[5:], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count("done earlier") == 2 and "3 finished, 0 failed" in res.stdout
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())


def test_chapter_batch_with_two_parameter_sets_resumes_after_kill(repo_root, tmp_path):
    """The AffectGPT chapter under two checkpoint rules through dask; killed after the first run
    finishes, the rerun executes only the other one."""
    grid = repo_root / "batches" / "affectgpt_checkpoint_rules.yaml"
    out = tmp_path / "runs"
    cmd = [sys.executable, "-m", "compendium.cli", "batch", str(grid), "--out", str(out), "--workers", "1", "--quiet"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 300
    while not list(out.glob("*/DONE.json")) and time.time() < deadline:
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = list(out.glob("*/DONE.json"))
    assert len(first) == 1, "one run should have finished before the kill"
    stamp = first[0].stat().st_mtime_ns
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count("done earlier") == 1 and "2 finished, 0 failed" in res.stdout
    assert first[0].stat().st_mtime_ns == stamp
    verdict_sets = []
    for done in sorted(out.glob("*/DONE.json")):
        params = json.loads((done.parent / "run.json").read_text())["parameters"]
        cells = json.loads((done.parent / "mer_unibench.results.json").read_text())["cells"]
        exact = sum(c["verdict"] == "exact" and c["table"] == "table2" for c in cells)
        verdict_sets.append((params["checkpoint_rule"], exact))
    assert dict(verdict_sets) == {"best-on-test": 7, "last": 0}


def test_declared_inputs_enter_the_fingerprint(chapter, tmp_path, monkeypatch):
    monkeypatch.setenv("COMPENDIUM_ROOT", str(tmp_path))
    nb = nbformat.read(chapter, as_version=4)
    nb.metadata["compendium"] = {"inputs": ["book/*/*.results.json"]}
    nbformat.write(nb, chapter)
    before = runner.fingerprint(chapter, {}, "paper")
    (tmp_path / "book" / "other").mkdir(parents=True)
    (tmp_path / "book" / "other" / "x.results.json").write_text("{}")
    assert runner.fingerprint(chapter, {}, "paper") != before


def test_status_book_says_which_outputs_are_stale(chapter, tmp_path, capsys):
    from compendium.cli import book_freshness

    root = tmp_path
    assert book_freshness(root) == [{"notebook": "toy/toy", "profile": "-", "executed": "-", "up to date": "not executed"}]
    job = runner.make_job(chapter, "paper", out_dir=root / "book" / "toy")
    assert runner.run_notebook(job)["status"] == "ok"
    row, = book_freshness(root)
    assert row["profile"] == "paper" and row["up to date"] == "yes"
    (chapter.parent / "toy.paper.yaml").write_text("x: 2\n")  # the profile changed: the book copy is stale
    row, = book_freshness(root)
    assert row["up to date"] == "no (inputs changed)"


def test_killed_run_leaves_nothing_beside_the_output_and_the_next_start_cleans_up(chapter, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("COMPENDIUM_CACHE", str(cache))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "compendium.cli", "run", str(chapter), "--profile", "ci", "--out", str(out),
           "-p", "sleep_s", "60", "--quiet"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    staging = cache / "staging"
    deadline = time.time() + 60
    while not list(staging.glob("*/*.running.ipynb")) and time.time() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    left = list(staging.iterdir())
    assert len(left) == 1 and left[0].name.startswith(f"{proc.pid}-")  # in the cache, never beside the output
    assert not list(out.rglob("*.running.ipynb")) and not list(out.rglob("*.results.json"))
    assert runner.clean_stale_staging() == left and not list(staging.iterdir())


def test_outputs_are_normalised_so_a_rerun_gives_the_same_notebook(chapter, tmp_path):
    nb = nbformat.read(chapter, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(
        "import pandas as pd\n"
        "display(pd.DataFrame({'a': [1, 2]}).style.highlight_max())\n"
        "print(object())"))
    nbformat.write(nb, chapter)
    out = tmp_path / "out"

    def run_and_read():
        assert runner.run_notebook(runner.make_job(chapter, "ci", out_dir=out), force=True)["status"] == "ok"
        done = nbformat.read(out / "toy.ipynb", as_version=4)
        del done.metadata["compendium"]  # provenance: date and wall time differ by design
        assert done.cells[-1].id == "run-provenance"  # its cell id does not
        return nbformat.writes(nbformat.from_dict({**done, "cells": done.cells[:-1]}))

    first, second = run_and_read(), run_and_read()
    assert first == second
    assert "T_s0000" in first and "at 0x…" in first and '"execution"' not in first


def test_normalise_outputs_numbers_styler_ids_in_order():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x", outputs=[
        nbformat.v4.new_output("display_data", data={
            "text/html": '<style>#T_ab12f_row0 {}</style><table id="T_ab12f"></table><table id="T_0c3d9">',
            "text/plain": "<pandas.io.formats.style.Styler at 0x7f510ef6f650>"}),
        nbformat.v4.new_output("stream", name="stdout", text="<object object at 0x7fabc1234560>\n")])])
    nb.cells[0].metadata["execution"] = {"iopub.execute_input": "2026-11-26T04:36:28Z"}
    runner.normalise_outputs(nb)
    data = nb.cells[0].outputs[0]["data"]
    assert data["text/html"] == '<style>#T_s0000_row0 {}</style><table id="T_s0000"></table><table id="T_s0001">'
    assert data["text/plain"] == "<pandas.io.formats.style.Styler at 0x…>"
    assert nb.cells[0].outputs[1]["text"] == "<object object at 0x…>\n" and "execution" not in nb.cells[0].metadata
