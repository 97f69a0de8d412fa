"""`mfmc anonymize IMAGE|FOLDER -o OUT [--report FILE] [--seed N] [--swapper NAME]`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from mfmc.cli.folders import over_folder


def anonymize_command(
    image: Annotated[Path, typer.Argument(help="A photo, or a folder of photos (searched recursively).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Output photo (a folder for folder input).")],
    report: Annotated[
        Path | None, typer.Option("--report", help="Write a JSON report: one entry per face (per file for folders).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the target choice (same seed, same fakes).")] = 0,
    swapper: Annotated[str, typer.Option("--swapper", help="Swapper name: `warp` (default) or `onnx`.")] = "warp",
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
    pipeline.preload(landmarks=True, attributes=True, expressions=True, recognizers=list(pipeline.recognizers))
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
    fell: dict[str, int] = {}
    for f in every:
        if f["fallback"] not in ("none", "alpha"):
            fell[f"{f['fallback']} ({f['reason']})"] = fell.get(f"{f['fallback']} ({f['reason']})", 0) + 1
    from mfmc.cli.text import plural

    print(f"{plural(len(results) - failed, 'photo')}, {plural(len(every), 'face')} anonymized into {output}, "
          f"{len(every) - sum(fell.values())} swapped, {sum(fell.values())} fell back")
    for why, n in sorted(fell.items(), key=lambda kv: -kv[1]):
        print(f"  {n} x {why}")
    if report:
        _write_json(report, results)
    if failed:
        raise typer.Exit(2)


def _one(gen: Any, path: Path, out: Path, seed: int) -> list[dict[str, Any]]:
    from mfmc.vision import load_image, save_image

    photo = load_image(path)
    new, reports = gen.anonymize(photo, seed=seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_image(out, new)
    return [r.to_dict() for r in reports]


def _summary(path: Path, reports: list[dict[str, Any]]) -> None:
    """One line per photo: faces swapped, and how many fell back to what and why (a fallback is never silent)."""
    swapped = sum(1 for r in reports if r["fallback"] in ("none", "alpha"))
    from mfmc.cli.text import plural

    line = f"{path}: {plural(len(reports), 'face')} anonymized, {swapped} swapped"
    fell = [r for r in reports if r["fallback"] not in ("none", "alpha")]
    if fell:
        kinds: dict[str, int] = {}
        for r in fell:
            kinds[r["fallback"]] = kinds.get(r["fallback"], 0) + 1
        line += ", fell back: " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    print(line)
    for r in fell:
        errors = f" [{len(r.get('errors', []))} errors]" if r.get("errors") else ""
        print(f"  face {r['index']}: {r['fallback']}: {r['reason']}{errors}")


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
