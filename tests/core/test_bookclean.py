"""The book's cleaning step on a hand-made executed notebook: what a reader must not see goes, the
answer stays."""

from __future__ import annotations

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from compendium import bookclean

ROOTS = [("/work/main", ""), ("/work", ""), ("/root", "~/")]


def _notebook():
    params = new_code_cell("num_epochs: int = 2  # epochs (ci)\nlr: float = 1e-3  # learning rate\nname = 'toy'",
                           metadata={"tags": ["parameters"]})
    injected = new_code_cell("# Parameters\nnum_epochs = 300\nlr = 0.0005\n", metadata={"tags": ["injected-parameters"]})
    train = new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(acc)", outputs=[
        new_output("stream", name="stderr", text="/work/main/.venv/lib/python3.11/site-packages/tqdm/auto.py:21: TqdmWarning: IProgress not found\n"),
        new_output("stream", name="stdout", text="epoch 1\r 50%|#####     | 1/2 [00:01<00:01, 1.0it/s]\repoch 1 acc 0.5\n"
                                                  "Loading weights: 100%\nread /work/shared/data/gfs/x.csv\n"),
        new_output("display_data", data={"application/vnd.jupyter.widget-view+json": {"model_id": "abc"},
                                         "text/plain": "  0%|          | 0/10"}),
        new_output("execute_result", data={"text/plain": "[<matplotlib.lines.Line2D at 0x…>]"}, execution_count=3),
        new_output("display_data", data={"text/plain": "<Figure size 640x480 with 1 Axes>"}),
        new_output("display_data", data={"image/png": "iVBOR", "text/plain": "<Figure size 640x480 with 1 Axes>"}),
        new_output("execute_result", data={"text/html": "<table><td>/root/.cache/compendium/x</td></table>",
                                           "text/plain": "table"}, execution_count=4),
    ])
    colab = new_code_cell("%pip install compendium", metadata={"tags": ["remove-cell"]})
    only_bar = new_code_cell("fit()", outputs=[new_output("stream", name="stdout", text="\r 10%|#| 1/10\r100%|##| 10/10\n")])
    nb = new_notebook(cells=[new_markdown_cell("# Title"), colab, params, injected, train, only_bar])
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    return nb


def test_code_is_folded_except_the_parameters_cell_and_tagged_cells_keep_their_tags():
    nb = bookclean.clean_notebook(_notebook(), roots=ROOTS)
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    assert tags[1] == ["remove-cell"] and tags[2] == ["parameters"]
    assert tags[3] == ["nbval-check-output", "hide-input"] and tags[4] == ["hide-input"]
    assert nb.cells[0].cell_type == "markdown" and "tags" not in nb.cells[0].metadata


def test_injected_parameters_are_merged_into_the_parameters_cell():
    nb = bookclean.clean_notebook(_notebook(), roots=ROOTS)
    assert not any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
    assert nb.cells[2].source == ("num_epochs: int = 300  # epochs (ci)\nlr: float = 0.0005  # learning rate\n"
                                  "name = 'toy'")


def test_merge_refuses_what_it_cannot_do_safely_and_the_injected_cell_is_then_kept_folded():
    assert bookclean.merge_parameters("x = [1,\n     2]  # list", "x = [3]") is None  # default spans lines
    assert bookclean.merge_parameters("x = 1", "y = 2") is None  # a name the cell does not declare
    assert bookclean.merge_parameters("x = 1  # one", "x = 'a # b'") == "x = 'a # b'  # one"
    nb = _notebook()
    nb.cells[3].source = "# Parameters\nunknown = 1\n"
    nb = bookclean.clean_notebook(nb, roots=ROOTS)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "hide-input" in injected[0].metadata["tags"]
    assert nb.cells[2].source.startswith("num_epochs: int = 2")


def test_noise_goes_and_the_answer_stays():
    nb = bookclean.clean_notebook(_notebook(), roots=ROOTS)
    train = nb.cells[3]
    assert train.source == "print(acc)"  # the marker became the nbval-check-output tag
    kinds = [(o.output_type, o.get("name")) for o in train.outputs]
    assert kinds == [("stream", "stdout"), ("display_data", None), ("execute_result", None)]
    assert train.outputs[0].text == "epoch 1 acc 0.5\nread shared/data/gfs/x.csv\n"
    assert train.outputs[1].data["image/png"] == "iVBOR"  # a figure keeps its image
    assert train.outputs[2].data["text/html"] == "<table><td>~/.cache/compendium/x</td></table>"
    assert nb.cells[4].outputs == []  # a stream that was only a progress bar goes
    assert "widgets" not in nb.metadata


def test_clean_stream_and_noise_rules_on_their_own():
    assert bookclean.clean_stream("a\rb\rc\nd") == "c\nd"
    assert bookclean.clean_stream("Downloading model: 35%\nok") == "ok"
    assert bookclean.clean_stream("accuracy 95% of 10 runs") == "accuracy 95% of 10 runs"
    assert bookclean.is_noise_output(new_output("stream", name="stderr", text="UserWarning"))
    assert not bookclean.is_noise_output(new_output("execute_result", data={"text/plain": "0.95"}, execution_count=1))
    assert bookclean.is_noise_output(new_output("execute_result", data={"text/plain": "<Foo at 0x7f3a2c>"}, execution_count=1))
    assert bookclean.strip_paths("/work/main/book/x and /work/shared/y", ROOTS) == "book/x and shared/y"


def test_clean_file_round_trip(tmp_path):
    path = tmp_path / "nb.ipynb"
    nbformat.write(_notebook(), str(path))
    bookclean.clean_file(path)
    again = nbformat.read(str(path), as_version=4)
    before = nbformat.writes(again)
    # idempotent under the roots clean_file used (the clone's own folders, wherever CI puts it)
    assert nbformat.writes(bookclean.clean_notebook(again, roots=bookclean.default_roots())) == before
    assert "TqdmWarning" not in before and "NBVAL_" not in before


def test_the_runner_stores_cleaned_notebooks(tmp_path):
    import shutil
    from pathlib import Path

    from compendium import runner

    folder = tmp_path / "notebooks" / "toy"
    folder.mkdir(parents=True)
    source = folder / "toy.ipynb"
    shutil.copyfile(Path(__file__).resolve().parents[1] / "fixtures" / "toy.ipynb", source)
    (folder / "toy.paper.yaml").write_text("x: 3\n")
    job = runner.make_job(source, "paper", out_dir=tmp_path / "out")
    assert runner.run_notebook(job)["status"] == "ok"
    nb = nbformat.read(str(tmp_path / "out" / "toy.ipynb"), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].metadata["tags"] == ["parameters"] and code[0].source.startswith("x: int = 3  # a number")
    assert all("hide-input" in c.metadata["tags"] for c in code[1:])
