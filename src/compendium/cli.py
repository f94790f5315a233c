"""``compendium``: run the book's notebooks, batches of them, build the book, check the data.

Examples::

    compendium list                                  # chapters, notebooks, profiles
    compendium run affectgpt --profile paper         # execute into book/affectgpt/ (skips up-to-date)
    compendium run affectgpt/mer_unibench -p checkpoint_rule last
    compendium batch grid.yaml --out runs/           # notebooks × parameter sets through dask
    compendium build                                 # out-of-date notebooks, verdict page, HTML
    compendium data check                            # verify every registered file resolves
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
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
    if not rows:
        return
    width = max(len(r.get("notebook", r.get("run_id", ""))) for r in rows)
    for r in rows:
        name = r.get("run_id") or r.get("notebook", "")
        line = f"  {name:<{width}}  {r['status']:<12} {r.get('wall_time_s', 0):>8.1f} s"
        if r.get("error"):
            line += f"   {str(r['error']).splitlines()[0][:160]}"
        print(line)


def cmd_list(args) -> int:
    for source in runner.discover("all"):
        profiles = ["ci"] + [p for p in ("paper", "gpu") if source.with_suffix(f".{p}.yaml").exists()]
        print(f"{source.parent.name}/{source.stem:<28} profiles: {', '.join(profiles)}")
    return 0


def cmd_run(args) -> int:
    overrides = _parse_overrides(args.param)
    sources = runner.discover(args.target)
    rows = []
    for source in sources:
        try:
            job = runner.make_job(source, args.profile, overrides, Path(args.out) / source.parent.name if args.out else None)
        except runner.ParameterError as exc:
            if args.profile == "gpu" and "no 'gpu' profile" in str(exc) and len(sources) > 1:
                rows.append({"notebook": f"{source.parent.name}/{source.stem}", "status": "no gpu profile", "wall_time_s": 0})
                continue
            raise
        print(f"→ {job.paper}/{job.name} [{args.profile}]", flush=True)
        rows.append(runner.run_notebook(job, force=args.force, progress=not args.quiet, log_output=args.log_output))
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
            print("error: a notebook failed; its output is kept as book/<chapter>/<name>.failed.ipynb", file=sys.stderr)
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
        bad = 0
        keys = [k for k in data.registered_keys() if not args.key or k.startswith(args.key)]
        for key in keys:
            try:
                data.fetch(key)
            except data.DataError as exc:
                bad += 1
                print(f"✗ {exc}")
        print(f"{len(keys) - bad}/{len(keys)} files resolve and match their checksums")
        return 1 if bad else 0
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
            job = runner.make_job(source, profile if profile in runner.PROFILES else "ci", out_dir=output.parent)
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="compendium", description=__doc__.split("\n\n")[0],
        epilog="Profiles: ci = the notebook's defaults (seconds to minutes on 2 CPU cores); paper = "
               "<name>.paper.yaml, what the committed book shows; gpu = <name>.gpu.yaml, real checkpoints "
               "and gated data from paths you give. Data: set COMPENDIUM_DATA to a folder laid out like "
               "`compendium data list` (files are otherwise downloaded into ~/.cache/compendium).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="chapters, notebooks and the profiles each has")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("run", help="execute notebooks with papermill into book/ (skips those up to date)")
    p.add_argument("target", help="'all', a chapter (e.g. affectgpt), chapter/notebook, or a path to an .ipynb")
    p.add_argument("--profile", choices=runner.PROFILES, default="paper", help="parameter profile (default: paper)")
    p.add_argument("-p", "--param", nargs=2, action="append", metavar=("NAME", "VALUE"),
                   help="override one parameter (VALUE parsed as YAML); repeatable")
    p.add_argument("--out", help="write outputs under this folder instead of book/")
    p.add_argument("--force", action="store_true", help="execute even if the output is up to date")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--log-output", action="store_true", help="stream the notebook's output")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("batch", help="run a grid of notebooks × parameter sets through dask (resumable)")
    p.add_argument("grid", help="YAML: notebooks: [...], profile: ci, parameter_sets: [{...}] and/or matrix: {name: [...]}")
    p.add_argument("--out", default="runs", help="folder for the runs (default: runs/); reruns skip finished runs")
    p.add_argument("--scheduler", help="address of an existing dask scheduler (default: a local cluster)")
    p.add_argument("--workers", type=int, default=2, help="local cluster worker processes (default: 2)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_batch)

    p = sub.add_parser("build", help="run out-of-date notebooks, then render the book with jupyter-book")
    p.add_argument("--profile", choices=runner.PROFILES, default="paper")
    p.add_argument("--no-run", action="store_true", help="only render what is in book/")
    p.add_argument("--strict", action="store_true", help="warnings are errors (-W -n --keep-going)")
    p.add_argument("--keep-going", action="store_true", help="render even if a notebook failed")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("data", help="the data registry: list keys, where a key resolves, check all")
    p.add_argument("action", choices=["list", "where", "check"])
    p.add_argument("key", nargs="?", default="", help="a key or key prefix (e.g. graphs/ or emotion/affectgpt/output)")
    p.set_defaults(func=cmd_data)

    p = sub.add_parser("status", help="verdict counts per paper and table from book/**/*.results.json")
    p.add_argument("--json", action="store_true")
    p.add_argument("--book", action="store_true",
                   help="instead: each notebook's executed copy in book/ (profile, date, up to date or not)")
    p.set_defaults(func=cmd_status)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except runner.ParameterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        from .data import DataError

        if isinstance(exc, DataError):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
