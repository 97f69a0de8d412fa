"""`mfmc eval DIR [--out REPORT_DIR] [--anon DIR] [--strategy furthest|random|both] [--modes M,…] [--limit N]
[--seed N]`."""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from mfmc.errors import InvalidInputError


def eval_command(
    folder: Annotated[Path, typer.Argument(help="Folder of photos; one sub-folder per person labels identities.")],
    out: Annotated[Path, typer.Option("--out", help="Report folder (report.md, report.json, PNG plots).")] = Path(
        "mfmc-eval"),
    anon: Annotated[
        Path | None, typer.Option("--anon", help="Evaluate these anonymized photos (same names) instead of "
                                                 "anonymizing here.")
    ] = None,
    strategy: Annotated[str, typer.Option("--strategy", help="Pool query: `furthest`, `random` or `both`.")] = "both",
    modes: Annotated[
        str, typer.Option("--modes", help="Comma list of `single` (one unverified swap), `verified` (as shipped), "
                                          "`holdout` (verify with one recognizer, evaluate the others), `kept` "
                                          "(gender, expression, facial hair kept on whole photos), `loo` "
                                          "(leave-one-out transfer: verify with all recognizers but one, "
                                          "evaluate with it).")
    ] = "single,verified,holdout,kept,loo",
    holdout: Annotated[str, typer.Option("--holdout-verifier", help="The only verifier of `holdout` mode.")] = "dlib",
    limit: Annotated[int | None, typer.Option("--limit", help="At most N photos (spread over people).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the target choice.")] = 0,
    pool: Annotated[str | None, typer.Option("--pool", help="Pool folder or name (default: built-in).")] = None,
    max_side: Annotated[int, typer.Option("--max-side", help="Downscale photos to this longest side first.")] = 1600,
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Draw PNG plots (needs matplotlib).")] = True,
) -> None:
    """Anonymize a folder of photos and measure what the paper measures.

    Recognition accuracy (Table 1), fake quality (Fig. 4), pool distributions (Fig. 5) and similarity metrics
    for target choice (Fig. 6), as Markdown, JSON and PNG plots.
    """
    from mfmc.cli.pool import resolve_pool
    from mfmc.eval import EvalOptions, Evaluation, build_report, discover, write_report
    from mfmc.eval.plots import available
    from mfmc.vision import FacePipeline

    strategies = {"both": ("furthest", "random"), "furthest": ("furthest",), "random": ("random",)}.get(strategy)
    if strategies is None:
        raise InvalidInputError(f"unknown strategy `{strategy}`", help="use `furthest`, `random` or `both`")
    mode_list = tuple(m.strip() for m in modes.split(",") if m.strip())
    for m in mode_list:
        if m not in ("single", "verified", "holdout", "kept", "loo"):
            raise InvalidInputError(f"unknown mode `{m}`",
                                    help="use `single`, `verified`, `holdout`, `kept` and/or `loo`")
    if anon is not None and not anon.is_dir():
        raise InvalidInputError(f"`{anon}` is not a folder", help="`--anon` takes the folder of anonymized photos")
    if plots and not available():
        print("note: matplotlib is not installed, so no plots are drawn (pip install matplotlib)", file=sys.stderr)
        plots = False
    photos = discover(folder, limit)
    opts = EvalOptions(strategies=strategies, modes=mode_list or ("verified",), seed=seed, max_side=max_side,
                       holdout_verifier=holdout)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    t0 = time.perf_counter()
    console = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task("evaluating", total=len(photos))

        def step(text: str) -> None:
            progress.update(task, description=text, completed=int(text.rsplit("(", 1)[1].split("/")[0]) - 1)

        ev = Evaluation(FacePipeline.default(), resolve_pool(pool), opts, progress=step)
        ev.run(photos, anon)
        progress.update(task, completed=len(photos))
    argv = ["mfmc", "eval", *sys.argv[2:]] if len(sys.argv) > 1 and sys.argv[1] == "eval" else None
    meta = {"input": folder.name, "seed": seed, "strategies": list(strategies), "limit": limit,
            "pool": pool or "default", "max_side": max_side, "holdout_verifier": holdout,
            "command": shlex.join(argv) if argv else f"mfmc eval {folder.name}",
            "seconds": round(time.perf_counter() - t0, 1)}
    report = build_report(ev, meta)
    files = write_report(report, out, ev, plots=plots)
    head = report["table1"]
    from mfmc.cli.text import plural

    print(f"{plural(report['meta']['photos'], 'photo')}, {plural(report['meta']['faces'], 'face')} in "
          f"{meta['seconds']} s; "
          f"report in {out}")
    for mode, by_rec in head.items():
        cells = ", ".join(f"{r} {a:.2f} ({s})" for r, v in by_rec.items()
                          for s, a in v["source_vs_result"].items() if a is not None)
        print(f"  accuracy after, {mode}: {cells}")
    kept = report.get("kept")
    if kept:
        print(f"  kept ({kept['eligible']} eligible faces): swapped {_pct(kept['swapped'])}, gender kept "
              f"{_pct(kept['gender_kept'])}, expression kept {_pct(kept['expression_kept'])}, facial hair added "
              f"{kept['beard_added']}")
    loo = report.get("leave_one_out")
    if loo:
        cells = ", ".join(f"{r} {v['reidentified']}/{v['swapped']}" for r, v in loo.items())
        print(f"  leave-one-out, re-identified by the recognizer left out: {cells}")
    for f in files:
        print(f"  wrote {f}")


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.0f} %"
