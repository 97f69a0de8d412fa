"""`mfmc anonymize IMAGE|FOLDER -o OUT [--report FILE] [--seed N] [--swapper NAME] [--verifiers N,…]`."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mfmc.cli.folders import over_folder

if TYPE_CHECKING:
    from mfmc.swap import FakeGenerator


def anonymize_command(
    image: Annotated[Path, typer.Argument(help="A photo, or a folder of photos (searched recursively).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Output photo (a folder for folder input).")],
    report: Annotated[
        Path | None, typer.Option("--report", help="Write a JSON report: one entry per face (per file for folders).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the target choice (same seed, same fakes).")] = 0,
    swapper: Annotated[
        str | None,
        typer.Option("--swapper", help="Swapper name: `split` (default: the source's coarse look under the target's "
                     "detail), `warp` (the target's whole inner face), or `onnx` (a learned swapper found on disk)."),
    ] = None,
    pool: Annotated[
        Path | None, typer.Option("--pool", help="Target pool folder (default: the built-in pool).")
    ] = None,
    verifiers: Annotated[
        str | None,
        typer.Option("--verifiers", help="Recognizers that verify each fake, NAME[,NAME…] (default: all; "
                     "`mfmc doctor` lists them)."),
    ] = None,
) -> None:
    """Replace every face with a verified fake; faces that cannot be faked safely are obfuscated."""
    _start_colour_tables()
    from mfmc.cli.platform import data_dir_of_env
    from mfmc.errors import InvalidImageError, InvalidInputError
    from mfmc.files import check_output, check_output_folder, require_regular_file
    from mfmc.vision import FacePipeline

    # refuse `/dev/zero`, a FIFO, a missing file, an output over the input or inside the data dir, before any model
    if image.is_dir():
        check_output_folder(output, inputs=(image,), protected=(data_dir_of_env(),))
    else:
        require_regular_file(image, error=InvalidImageError)
        check_output(output, inputs=(image,), protected=(data_dir_of_env(),))
    pipeline = FacePipeline.default()
    names = None
    if verifiers is not None:
        names = [n.strip() for n in verifiers.split(",") if n.strip()]
        known = list(pipeline.recognizers)
        unknown = [n for n in names if n not in known]
        if unknown or not names:
            raise InvalidInputError(f"unknown verifier `{unknown[0] if unknown else verifiers}`",
                                    help=f"available: {', '.join(known)}")
    # the models load in the background while the swap code is imported and faces detected
    pipeline.preload(detector=True, landmarks=True, attributes=True, expressions=True,
                     recognizers=list(pipeline.recognizers) if names is None else names)
    from mfmc.pool import TargetPool
    from mfmc.swap import FakeGenerator

    gen = FakeGenerator(
        pipeline, TargetPool.load(pool) if pool else TargetPool.default(), swapper=swapper, recognizers=names
    )
    if not image.is_dir():
        reports = _one(gen, image, output, seed)
        _summary(image, reports)
        if report:
            _write_json(report, reports)
        return

    results, failed = over_folder(image, "anonymizing", lambda path, name: _one(gen, path, output / name, seed))
    every = [f for r in results.values() if isinstance(r, list) for f in r]
    _folder_summary(len(results) - failed, every, output)
    if report:
        _write_json(report, results)
    if failed:
        raise typer.Exit(2)


def _start_colour_tables() -> threading.Thread:
    """OpenCV builds its Lab conversion tables on the first Lab conversion of the process (~0.1 s of CPU, one
    core), which every swap makes: built here in a thread of its own (cv2 releases the GIL), beside the imports,
    model loads and detection, instead of in the first swap. Same tables, so the same pixels."""

    def build() -> None:
        import cv2
        import numpy as np

        cv2.cvtColor(np.zeros((1, 1, 3), np.float32), cv2.COLOR_RGB2LAB)

    thread = threading.Thread(target=build, name="mfmc-lab-tables", daemon=True)
    thread.start()
    return thread


def _folder_summary(photos: int, every: list[dict[str, Any]], output: Path) -> None:
    """The folder's totals: faces swapped and fell back (per fallback and reason), changed expressions and
    unchecked genders (per change and reason)."""
    fell: dict[str, int] = {}
    for f in every:
        if f["fallback"] not in ("none", "alpha"):
            fell[f"{f['fallback']} ({f['reason']})"] = fell.get(f"{f['fallback']} ({f['reason']})", 0) + 1
    from mfmc.cli.text import plural

    changed, unchecked = _expression_changed(every), _gender_unchecked(every)
    print(f"{plural(photos, 'photo')}, {plural(len(every), 'face')} anonymized into {output}, "
          f"{len(every) - sum(fell.values())} swapped, {sum(fell.values())} fell back"
          + _kept_counts(changed, unchecked))
    for why, n in sorted(fell.items(), key=lambda kv: -kv[1]):
        print(f"  {n} x {why}")
    for why, n in _tally([f"expression changed {r['expression_changed']} (no candidate kept it)" for r in changed]):
        print(f"  {n} x {why}")
    for why, n in _tally([f"gender not checked ({why.split(' (')[0]})" for _, why in unchecked]):
        print(f"  {n} x {why}")


def _one(gen: FakeGenerator, path: Path, out: Path, seed: int) -> list[dict[str, Any]]:
    from mfmc.vision import load_image, save_image

    photo = load_image(path)
    new, reports = gen.anonymize(photo, seed=seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_image(out, new)
    return [r.to_dict() for r in reports]


def _summary(path: Path, reports: list[dict[str, Any]]) -> None:
    """One line per photo: faces swapped, how many fell back to what and why (a fallback is never silent), and
    what a swapped face's fake did not keep: a changed expression (no candidate kept it), a gender not checked."""
    swapped = sum(1 for r in reports if r["fallback"] in ("none", "alpha"))
    from mfmc.cli.text import plural

    line = f"{path}: {plural(len(reports), 'face')} anonymized, {swapped} swapped"
    fell = [r for r in reports if r["fallback"] not in ("none", "alpha")]
    if fell:
        kinds: dict[str, int] = {}
        for r in fell:
            kinds[r["fallback"]] = kinds.get(r["fallback"], 0) + 1
        line += ", fell back: " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    changed, unchecked = _expression_changed(reports), _gender_unchecked(reports)
    print(line + _kept_counts(changed, unchecked))
    for r in fell:
        errors = f" [{len(r.get('errors', []))} errors]" if r.get("errors") else ""
        print(f"  face {r['index']}: {r['fallback']}: {r['reason']}{errors}")
    for r in changed:
        print(f"  face {r['index']}: kept with expression {r['expression_changed']} (no candidate kept it)")
    for r, why in unchecked:
        print(f"  face {r['index']}: gender not checked: {why}")


def _expression_changed(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Faces whose fake shows another expression class than the source (the expression fallback)."""
    return [r for r in reports if r.get("expression_changed") is not None]


def _gender_unchecked(reports: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str]]:
    """Swapped faces whose fake's gender was not checked, with why (the generator's note, e.g. an uncertain
    source): a fallback (fill, pixelation) shows no face to check."""
    out = []
    for r in reports:
        if r["fallback"] not in ("none", "alpha") or r.get("checks", {}).get("gender", True):
            continue
        notes = [n.removeprefix("gender not checked: ") for n in r.get("notes", [])
                 if n.startswith("gender not checked: ")]
        out.append((r, notes[0] if notes else "the source has no gender reading (no age/gender model)"))
    return out


def _kept_counts(changed: list[dict[str, Any]], unchecked: list[tuple[dict[str, Any], str]]) -> str:
    parts = []
    if changed:
        parts.append(f"{len(changed)} with a changed expression")
    if unchecked:
        parts.append(f"{len(unchecked)} without a gender check")
    return "".join(f", {p}" for p in parts)


def _tally(lines: list[str]) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for line in lines:
        counts[line] = counts.get(line, 0) + 1
    return sorted(counts.items(), key=lambda kv: -kv[1])


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
