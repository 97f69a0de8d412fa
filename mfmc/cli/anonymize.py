"""`mfmc anonymize IMAGE|FOLDER -o OUT [--report FILE] [--seed N] [--swapper NAME]`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from mfmc.errors import InvalidImageError, InvalidInputError


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
) -> None:
    """Replace every face with a verified fake; faces that cannot be faked safely are obfuscated."""
    from mfmc.pool import TargetPool
    from mfmc.swap import FakeGenerator
    from mfmc.vision import FacePipeline
    from mfmc.vision.images import image_files

    gen = FakeGenerator(
        FacePipeline.default(), TargetPool.load(pool) if pool else TargetPool.default(), swapper=swapper
    )
    if not image.is_dir():
        reports = _one(gen, image, output, seed)
        _summary(image, reports)
        if report:
            _write_json(report, reports)
        return

    files = image_files(image)
    if not files:
        raise InvalidInputError(f"no images in `{image}`", help="looked for .jpg .jpeg .png .webp .bmp .tif .gif")
    results: dict[str, Any] = {}
    failed = 0
    from rich.console import Console
    from rich.progress import Progress

    with Progress(transient=True, disable=not sys.stderr.isatty(), console=Console(stderr=True)) as progress:
        task = progress.add_task("anonymizing", total=len(files))
        for path in files:
            name = str(path.relative_to(image))
            try:
                results[name] = _one(gen, path, output / name, seed)
            except InvalidImageError as err:
                failed += 1
                results[name] = {"error": err.message}
                print(err.render().replace("error: ", f"error: {name}: ", 1), file=sys.stderr)
            progress.advance(task)
    faces = sum(len(r) for r in results.values() if isinstance(r, list))
    print(f"{len(files) - failed} photos, {faces} faces anonymized into {output}")
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
    kinds: dict[str, int] = {}
    for r in reports:
        kinds[r["fallback"]] = kinds.get(r["fallback"], 0) + 1
    detail = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    print(f"{path}: {len(reports)} faces anonymized" + (f" (fallback: {detail})" if detail else ""))


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
