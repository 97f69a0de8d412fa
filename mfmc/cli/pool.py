"""`mfmc pool …`: index a folder of synthetic faces, and describe a pool."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mfmc.errors import InvalidInputError

if TYPE_CHECKING:
    import numpy as np

    from mfmc.pool import TargetPool

pool_app = typer.Typer(help="Build and inspect target pools of synthetic faces.", no_args_is_help=True)


def pools_home() -> Path:
    """Where `mfmc pool build` writes pools by default: `$MFMC_HOME/pools` (default `~/.mfmc/pools`)."""
    return Path(os.environ.get("MFMC_HOME", Path.home() / ".mfmc")) / "pools"


def resolve_pool(spec: str | None) -> TargetPool:
    """A pool from a directory path, a pool name under `pools_home()`, or the built-in one (None/"default")."""
    from mfmc.pool import TargetPool

    if spec in (None, "default"):
        return TargetPool.default()
    path = Path(spec)
    if not path.exists() and (pools_home() / spec).exists():
        path = pools_home() / spec
    if not path.exists():
        raise InvalidInputError(f"no pool `{spec}`", help="pass a pool folder, or build one with `mfmc pool build`")
    return TargetPool.load(path)


@pool_app.command("build")
def build(
    folder: Annotated[Path, typer.Argument(help="Folder of face images (searched recursively).")],
    name: Annotated[str | None, typer.Option("--name", help="Pool name (default: the folder's name).")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Pool folder (default: ~/.mfmc/pools/NAME).")] = None,
    min_face: Annotated[float, typer.Option(help="Smallest accepted face, pixels.")] = 64.0,
    min_sharpness: Annotated[float, typer.Option(help="Smallest accepted Laplacian variance.")] = 15.0,
    crop_size: Annotated[int, typer.Option(help="Side of the stored crops, pixels.")] = 256,
    show_rejected: Annotated[bool, typer.Option("--show-rejected", help="List every rejected file.")] = False,
) -> None:
    """Index every face image under FOLDER; resumable (files already seen are skipped by content hash)."""
    from mfmc.pool.build import BuildOptions, build_pool

    if not folder.is_dir():
        raise InvalidInputError(f"`{folder}` is not a folder", help="pass the folder that holds the face images")
    pool_name = name or folder.resolve().name
    target = out or pools_home() / pool_name
    report = build_pool(folder, target, name=pool_name,
                        options=BuildOptions(min_face=min_face, min_sharpness=min_sharpness, crop_size=crop_size))
    print(f"pool `{pool_name}` at {target}: {report.added} added, {report.skipped} already seen, "
          f"{len(report.rejected)} rejected")
    for reason, count in sorted(report.reasons().items()):
        print(f"  rejected ({reason}): {count}")
    if show_rejected:
        for r in report.rejected:
            print(f"  {r['file']}: {r['reason']}")


@pool_app.command("info")
def info(
    pool: Annotated[str | None, typer.Argument(help="Pool folder or name (default: the built-in pool).")] = None,
    plots: Annotated[Path | None, typer.Option("--plots", help="Write distance and age histograms here.")] = None,
    recognizer: Annotated[str | None, typer.Option(help="Recognizer for the distance histogram.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Counts and distributions of a pool (and optional PNG histograms, as the paper's Fig. 5)."""
    p = resolve_pool(pool)
    summary = p.info()
    if plots is not None:
        summary["plots"] = [str(f) for f in write_plots(p, plots, recognizer)]
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    from mfmc.cli.text import plural

    print(f"pool `{summary['name']}`: {plural(summary['faces'], 'face')}, {summary['rejected']} rejected at build")
    for key in ("sources", "gender", "age_groups"):
        print(f"  {key}: " + ", ".join(f"{k} {v}" for k, v in summary[key].items()))
    for key in ("age", "face_size", "quality"):
        if summary[key]:
            s = summary[key]
            print(f"  {key}: min {s['min']}, median {s['median']}, max {s['max']}")
    for r, v in summary["recognizers"].items():
        ident = summary["identities"].get(r)
        extra = f", {ident['greedy']} distinct identities at {ident['threshold']}" if ident else ""
        print(f"  recognizer {r}: {v['dim']}-D, threshold {v['threshold']}{extra}")
    for f in summary.get("plots", []):
        print(f"  wrote {f}")


def write_plots(pool: TargetPool, folder: Path, recognizer: str | None = None) -> list[Path]:
    """Embedding-distance and age histograms as PNG files (drawn with Pillow)."""
    import numpy as np

    from mfmc.pool.diversity import pairwise

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    recs = [recognizer] if recognizer else pool.recognizers
    for r in recs:
        if r not in pool.recognizers:
            raise InvalidInputError(f"pool has no recognizer `{r}`", help=f"it has: {', '.join(pool.recognizers)}")
        emb = pool.index.embeddings[r]
        if len(emb) > 3000:
            emb = emb[np.random.default_rng(0).choice(len(emb), 3000, replace=False)]
        d = pairwise(emb)[np.triu_indices(len(emb), 1)]
        thr = pool.index.recognizers[r].threshold
        path = folder / f"distance-{r}.png"
        _histogram(d, f"pairwise {r} L2 distance (threshold {thr})", path, marker=thr)
        out.append(path)
    ages = pool.index.attributes["age"]
    path = folder / "age.png"
    _histogram(ages[np.isfinite(ages)], "estimated age (years)", path)
    out.append(path)
    return out


def _histogram(values: np.ndarray, title: str, path: Path, marker: float | None = None) -> None:
    import numpy as np
    from PIL import Image, ImageDraw

    w, h, pad = 640, 360, 40
    img = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(img)
    draw.text((pad, 10), title, fill="black")
    if values.size:
        counts, edges = np.histogram(values, bins=40)
        top = max(int(counts.max()), 1)
        bw = (w - 2 * pad) / len(counts)
        for i, c in enumerate(counts):
            x0 = pad + i * bw
            draw.rectangle([x0, h - pad - (h - 2 * pad) * c / top, x0 + bw - 1, h - pad], fill=(70, 110, 180))
        draw.text((pad, h - pad + 5), f"{edges[0]:.2f}", fill="black")
        draw.text((w - pad - 40, h - pad + 5), f"{edges[-1]:.2f}", fill="black")
        draw.text((w - pad - 80, 10), f"max count {top}", fill="black")
        if marker is not None and edges[0] <= marker <= edges[-1]:
            x = pad + (marker - edges[0]) / (edges[-1] - edges[0]) * (w - 2 * pad)
            draw.line([x, pad, x, h - pad], fill=(200, 40, 40), width=2)
    draw.line([pad, h - pad, w - pad, h - pad], fill="black")
    img.save(path)
