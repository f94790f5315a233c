"""compendium: run the book's notebooks, batches of them, build the book, check the data.

Examples:
  compendium list                                  chapters, notebooks, profiles
  compendium run affectgpt                         the paper profile into book/affectgpt/ (skips up-to-date)
  compendium run affectgpt/mer_unibench -p checkpoint_rule last --out /tmp/mine
  compendium batch grid.yaml --out runs/           notebooks x parameter sets through dask
  compendium build                                 out-of-date notebooks, verdict page, HTML
  compendium data check                            every registered file resolves and matches
  compendium status --book                         each book notebook: profile, date, up to date
  compendium train tiny-vim                        the project's dense tiny Vim to its plateau (resumable)
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import yaml

from . import runner
from .paths import repo_root


def _parse_overrides(pairs: list[list[str]] | None) -> dict:
    out = {}
    for name, raw in pairs or []:
        out[name] = yaml.safe_load(raw)  # "3" -> 3, "true" -> True, "[1, 2]" -> [1, 2]
    return out


def _print_table(rows: list[dict]) -> None:
    """One line per run (named by notebook, profile and parameters), its status and time; failures
    add the error ("Class: message") and where the failed notebook was kept."""
    if not rows:
        return
    names = [r.get("label") or r.get("notebook") or r.get("run_id", "") for r in rows]
    width = max(len(n) for n in names)
    for name, r in zip(names, rows):
        print(f"  {name:<{width}}  {r['status']:<12} {r.get('wall_time_s', 0):>8.1f} s")
        if r.get("error"):
            print(f"      {r['error']}")
        if r.get("failed_notebook"):
            print(f"      failed notebook kept at {r['failed_notebook']}")


def cmd_list(args) -> int:
    rows = []
    for source in runner.discover("all"):
        # Every notebook has ci (its defaults) and paper (its paper.yaml, or the defaults at full scale).
        paper = "paper" if source.with_suffix(".paper.yaml").exists() else "paper (= defaults)"
        profiles = ["ci", paper] + (["gpu"] if source.with_suffix(".gpu.yaml").exists() else [])
        rows.append((f"{source.parent.name}/{source.stem}", ", ".join(profiles)))
    width = max(len("notebook"), *(len(name) for name, _ in rows))
    print(f"{'notebook':<{width}}  profiles")
    for name, profiles in rows:
        print(f"{name:<{width}}  {profiles}")
    return 0


def cmd_run(args) -> int:
    overrides = _parse_overrides(args.param)
    sources = runner.discover(args.target)
    rows, jobs = [], []
    for source in sources:  # every job is validated before the first kernel starts
        try:
            jobs.append(runner.make_job(source, args.profile, overrides,
                                        Path(args.out) / source.parent.name if args.out else None))
        except runner.ParameterError as exc:
            if args.profile == "gpu" and "no 'gpu' profile" in str(exc) and len(sources) > 1:
                rows.append({"notebook": f"{source.parent.name}/{source.stem}", "status": "no gpu profile", "wall_time_s": 0})
                continue
            raise
    for job in jobs:
        print(f"→ {job.paper}/{job.name} [{args.profile}]", flush=True)
        row = runner.run_notebook(job, force=args.force, progress=not args.quiet, log_output=args.log_output)
        if row["status"] == "failed":
            print(f"✗ {row['notebook']}: {row['error']}", file=sys.stderr, flush=True)
        rows.append(row)
    print("summary:")
    _print_table(rows)
    return 1 if any(r["status"] == "failed" for r in rows) else 0


def cmd_batch(args) -> int:
    runs = runner.load_grid(args.grid)
    results = runner.run_batch(runs, out_dir=Path(args.out), scheduler=args.scheduler, workers=args.workers,
                               progress=not args.quiet)
    print("summary:")
    _print_table(results)
    failed = sum(r["status"] == "failed" for r in results)
    print(f"{len(results) - failed} finished, {failed} failed; results in {args.out}")
    return 1 if failed else 0


def cmd_build(args) -> int:
    root = repo_root()
    if not args.no_run:
        rc = cmd_run(argparse.Namespace(target="all", profile=args.profile, param=None, out=None, force=False,
                                        quiet=args.quiet, log_output=False))
        if rc and not args.keep_going:
            print(f"error: a notebook failed; its notebook is kept under {runner.cache_root() / 'failed'}", file=sys.stderr)
            return rc
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb) if jb.exists() else "jupyter-book", "build", str(root / "book"), "--config", str(root / "_config.yml")]
    if args.strict:
        cmd += ["-W", "-n", "--keep-going"]
    print("→", " ".join(cmd), flush=True)
    rc = subprocess.call(cmd, cwd=root)
    if rc == 0:
        print(f"book: {root / '_build' / 'html' / 'index.html'}")
    return rc


def cmd_data(args) -> int:
    from . import data

    if args.action == "list":
        for key in data.registered_keys():
            if not args.key or key.startswith(args.key):
                e = data.entry(key)
                print(f"{key}\t{e.size}\t{e.url}")
        return 0
    if args.action == "where":
        print(data.fetch(args.key))
        return 0
    if args.action == "check":
        keys = [k for k in data.registered_keys() if not args.key or k.startswith(args.key)]
        results = data.check(keys, workers=args.workers, total_timeout=args.timeout)
        bad = [r for r in results if not r.ok]
        for r in bad:
            print(f"✗ {r.key}: {r.error}")
        extra = data.unregistered_files()
        for path in extra:
            print(f"? {path}: not a registered file (ignored by the loaders)")
        print(f"{len(keys) - len(bad)}/{len(keys)} files resolve and match their checksums"
              + (f"; {len(extra)} unregistered file(s) in the data folders" if extra else ""))
        return 1 if bad or extra else 0
    return 2


def book_freshness(root: Path | None = None) -> list[dict]:
    """Per source notebook: the profile and date of its executed copy in book/, and whether that copy
    was made from the current inputs (the same fingerprint `compendium run` compares)."""
    import nbformat

    root = root or repo_root()
    rows = []
    for source in runner.discover("all", root=root):
        name = f"{source.parent.name}/{source.stem}"
        output = root / "book" / source.parent.name / source.name
        if not output.exists():
            rows.append({"notebook": name, "profile": "-", "executed": "-", "up to date": "not executed"})
            continue
        meta = nbformat.read(output, as_version=4).metadata.get(runner.META_KEY, {})
        profile = meta.get("profile", "?")
        try:
            profile_name = profile if profile in runner.PROFILES else "ci"
            job = runner.Job(source, output, runner.profile_parameters(source, profile_name), profile_name)
            fresh = "yes" if runner.is_up_to_date(job) else "no (inputs changed)"
        except Exception as exc:  # a profile file that no longer validates is worth showing, not fatal
            fresh = f"unknown ({exc.__class__.__name__})"
        rows.append({"notebook": name, "profile": profile, "executed": str(meta.get("started", "?")),
                     "up to date": fresh})
    return rows


def cmd_status(args) -> int:
    from . import verdicts

    if args.book:
        import pandas as pd

        frame = pd.DataFrame(book_freshness())
        print(frame.to_json(orient="records", indent=1) if args.json else frame.to_string(index=False))
        return 0
    cells = verdicts.collect(repo_root() / "book")
    table = verdicts.summary(cells)
    if args.json:
        print(table.to_json(orient="records", indent=1))
    else:
        print(table.to_string(index=False) if not table.empty else "no results files under book/ yet")
    return 0


EXAMPLES = {
    "list": "  compendium list",
    "run": "  compendium run affectgpt                      # paper profile into book/affectgpt/\n"
           "  compendium run all --force                    # every notebook, even if up to date\n"
           "  compendium run gfs --profile ci --out /tmp/ci # a profile other than paper needs --out\n"
           "  compendium run affectgpt/mer_unibench -p checkpoint_rule last --out /tmp/mine\n\n"
           "Only the paper (or gpu) profile without -p writes book/; anything else needs --out.\n"
           "Allowed values are checked before a kernel starts: papermill --help-notebook <notebook> lists them.",
    "batch": "  compendium batch batches/affectgpt_checkpoint_rules.yaml --out runs/\n"
             "  compendium batch grid.yaml --scheduler tcp://host:8786\n\n"
             "grid.yaml:  notebooks: [affectgpt/mer_unibench]\n"
             "            profile: ci\n"
             "            matrix: {checkpoint_rule: [best-on-test, last]}",
    "build": "  compendium build                              # paper profile, then the HTML\n"
             "  compendium build --no-run --strict            # only render book/, warnings are errors",
    "data": "  compendium data list graphs/                  # keys, sizes, URLs\n"
            "  compendium data where images/cifar10-jpg.zip  # where a key resolves\n"
            "  compendium data check --timeout 300           # verify every file, in parallel, bounded",
    "status": "  compendium status                             # verdict counts per paper and table\n"
              "  compendium status --book                      # each book notebook: profile, date, fresh",
    "train": "  compendium train tiny-vim                     # CPU, 2 threads; stop any time, rerun to resume\n"
             "  compendium train tiny-vim --device cuda       # the same recipe on a GPU",
}


def cmd_train(args) -> int:
    if args.threads < 1:
        raise runner.ParameterError(f"--threads must be at least 1, got {args.threads}")
    if args.max_epochs is not None and args.max_epochs < 1:
        raise runner.ParameterError(f"--max-epochs must be at least 1, got {args.max_epochs}")
    from dataclasses import replace

    from .vision_mamba import plateau

    cfg = plateau.PlateauConfig()
    if args.max_epochs is not None:
        cfg = replace(cfg, max_epochs=args.max_epochs)
    # Stopped (Ctrl-C, a killed job): the checkpoint keeps the last finished epoch; the same command resumes.
    plateau.make_artifact(cfg, data_root=args.data_root, device=args.device, num_threads=args.threads,
                          log=lambda line: print(line, flush=True))
    return 0


def _subparser(sub, name: str, help_text: str) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=help_text, description=help_text,
                          epilog="examples:\n" + EXAMPLES[name], formatter_class=argparse.RawDescriptionHelpFormatter)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="compendium", description=__doc__,
        epilog=textwrap.fill(
            "Profiles: ci = the notebook's defaults (seconds to minutes on 2 CPU cores); paper = "
            "<name>.paper.yaml, what the committed book shows; gpu = <name>.gpu.yaml, real checkpoints "
            "and gated data from paths you give. Data: set COMPENDIUM_DATA to a folder laid out like "
            "'compendium data list' shows (files are otherwise downloaded into ~/.cache/compendium). "
            "Each command has its own --help with examples.", 100),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = _subparser(sub, "list", "chapters, notebooks and the profiles each has")
    p.set_defaults(func=cmd_list)

    p = _subparser(sub, "run", "execute notebooks with papermill (paper profile into book/; skips those up to date)")
    p.add_argument("target", help="'all', a chapter (e.g. affectgpt), chapter/notebook, or a path to an .ipynb")
    p.add_argument("--profile", choices=runner.PROFILES, default="paper", help="parameter profile (default: paper)")
    p.add_argument("-p", "--param", nargs=2, action="append", metavar=("NAME", "VALUE"),
                   help="override one parameter (VALUE parsed as YAML); repeatable; needs --out")
    p.add_argument("--out", help="write outputs under this folder instead of book/")
    p.add_argument("--force", action="store_true", help="execute even if the output is up to date")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--log-output", action="store_true", help="stream the notebook's output")
    p.set_defaults(func=cmd_run)

    p = _subparser(sub, "batch", "run a grid of notebooks x parameter sets through dask (resumable)")
    p.add_argument("grid", help="YAML: notebooks: [...], profile: ci, parameter_sets: [{...}] and/or matrix: {name: [...]}")
    p.add_argument("--out", default="runs", help="folder for the runs (default: runs/); reruns skip finished runs")
    p.add_argument("--scheduler", help="address of an existing dask scheduler (default: a local cluster)")
    p.add_argument("--workers", type=int, default=2, help="local cluster worker processes (default: 2)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_batch)

    p = _subparser(sub, "build", "run out-of-date notebooks into book/, then render the book with jupyter-book")
    p.add_argument("--profile", choices=runner.BOOK_PROFILES, default="paper")
    p.add_argument("--no-run", action="store_true", help="only render what is in book/")
    p.add_argument("--strict", action="store_true", help="warnings are errors (-W -n --keep-going)")
    p.add_argument("--keep-going", action="store_true", help="render even if a notebook failed")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_build)

    p = _subparser(sub, "data", "the data registry: list keys, where a key resolves, check all")
    p.add_argument("action", choices=["list", "where", "check"])
    p.add_argument("key", nargs="?", default="", help="a key or key prefix (e.g. graphs/ or emotion/affectgpt/output)")
    p.add_argument("--workers", type=int, default=8, help="check: files verified in parallel (default: 8)")
    p.add_argument("--timeout", type=float, default=1800.0,
                   help="check: overall limit in seconds (default: 1800); each download is also limited by "
                        "COMPENDIUM_STALL_TIMEOUT (30 s of silence) and COMPENDIUM_DOWNLOAD_TIMEOUT (900 s)")
    p.set_defaults(func=cmd_data)

    p = _subparser(sub, "status", "verdict counts per paper and table from book/**/*.results.json")
    p.add_argument("--json", action="store_true")
    p.add_argument("--book", action="store_true",
                   help="instead: each notebook's executed copy in book/ (profile, date, up to date or not)")
    p.set_defaults(func=cmd_status)

    p = _subparser(sub, "train", "train one of the project's own small artifacts to its plateau and register it")
    p.add_argument("artifact", choices=["tiny-vim"], help="tiny-vim: the DyVM and R-MeeTo chapters' dense tiny Vim")
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: 2)")
    p.add_argument("--max-epochs", type=int, help="budget in epochs (default: the recipe's)")
    p.add_argument("--data-root", default="", help="a folder laid out like 'compendium data list' (default: registry)")
    p.set_defaults(func=cmd_train)
    return parser


def _on_sigint(signum, frame):
    runner.INTERRUPTED.set()  # remembered even where a library swallows the KeyboardInterrupt below
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .data import DataError

    runner.INTERRUPTED.clear()
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _on_sigint)
    try:
        rc = args.func(args)
        if runner.INTERRUPTED.is_set():
            raise KeyboardInterrupt
        return rc
    except (runner.ParameterError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # Ctrl-C: one line; the runner's finally blocks already removed what the run had staged.
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, previous)


if __name__ == "__main__":
    sys.exit(main())
