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
) -> None:
    """Replace every face with a verified fake; faces that cannot be faked safely are obfuscated."""
    from mfmc.cli.platform import data_dir_of_env
    from mfmc.errors import InvalidImageError
    from mfmc.files import check_output, check_output_folder, require_regular_file
    from mfmc.pool import TargetPool
    from mfmc.swap import FakeGenerator
    from mfmc.vision import FacePipeline

    # refuse `/dev/zero`, a FIFO, a missing file, an output over the input or inside the data dir, before any model
    if image.is_dir():
        check_output_folder(output, inputs=(image,), protected=(data_dir_of_env(),))
    else:
        require_regular_file(image, error=InvalidImageError)
        check_output(output, inputs=(image,), protected=(data_dir_of_env(),))
    gen = FakeGenerator(
        FacePipeline.default(), TargetPool.load(pool) if pool else TargetPool.default(), swapper=swapper
    )
    if not image.is_dir():
        reports = _one(gen, image, output, seed)
        _summary(image, reports)
        if report:
            _write_json(report, reports)
        return

    results, failed = over_folder(image, "anonymizing", lambda path, name: _one(gen, path, output / name, seed))
    faces = sum(len(r) for r in results.values() if isinstance(r, list))
    print(f"{len(results) - failed} photos, {faces} faces anonymized into {output}")
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
