"""`mfmc render --viewer V PHOTO`: a photo as one viewer sees it.

File mode (`--rules DIR --graph FILE --people DIR`, no platform): faces in PHOTO are identified against the
reference photos, decided by the rules (`mfmc.filemode`). Platform mode (none of those three options): PHOTO is
an uploaded photo's id or the image file that was uploaded (found by its content).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from mfmc.cli.platform import DEFAULT_DIR, DataDirOpt, DbOpt, ServerOpt
from mfmc.cli.text import plural
from mfmc.errors import InvalidImageError, InvalidInputError
from mfmc.files import check_output, require_regular_file

# how a faked face was made (`mfmc.vocabulary.Fallback` values), in words
MADE = {"none": "swapped, verified", "alpha": "swapped with full geometry, verified",
        "obfuscate": "pixelated, verified", "fill": "filled: no face left", "block": "blocked: no verified fake"}


def render_command(
    photo: Annotated[str, typer.Argument(
        metavar="PHOTO", help="An image file, or (platform mode) an uploaded photo's id.", show_default=False)],
    viewer: Annotated[str, typer.Option("--viewer", help="Who looks at the photo.", show_default=False)],
    rules: Annotated[Path | None, typer.Option(
        "--rules", help="File mode: folder (or file) of .mfmc rule files.", show_default=False)] = None,
    graph: Annotated[Path | None, typer.Option(
        "--graph", help="File mode: social graph file (TOML or JSON).", show_default=False)] = None,
    people: Annotated[Path | None, typer.Option(
        "--people", help="File mode: reference photos, DIR/<user>.jpg (one face) or DIR/<user>/ (several).",
        show_default=False)] = None,
    uploader: Annotated[str | None, typer.Option(
        "--uploader", help="File mode: who uploaded the photo (rules may test it).", show_default=False)] = None,
    album: Annotated[str | None, typer.Option(
        "--album", help="File mode: the photo's album (rules may test it).", show_default=False)] = None,
    out: Annotated[Path | None, typer.Option(
        "-o", "--out", help="Image to write (default: <stem>.<viewer>.png, on the platform photo-<id>-<viewer>.png).",
        show_default=False)] = None,
    seed: Annotated[int, typer.Option("--seed", help="File mode: seed of the fakes (same seed, same fakes).")] = 0,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print per face: box, owner (or null), decision, reasons.", show_default=False)] = False,
    data_dir: DataDirOpt = DEFAULT_DIR,
    db: DbOpt = None,
    server: ServerOpt = None,
) -> None:
    """The photo as VIEWER sees it: real faces where the owners' rules allow, verified fakes elsewhere.

    File mode needs --rules, --graph and --people; without them PHOTO is looked up on the platform.
    """
    given = {"--rules": rules, "--graph": graph, "--people": people}
    if any(v is not None for v in given.values()):
        missing = [k for k, v in given.items() if v is None]
        if missing:
            raise InvalidInputError(f"file mode needs --rules, --graph and --people (missing: {', '.join(missing)})",
                                    help="or give none of them to render a photo uploaded to the platform")
        assert rules is not None and graph is not None and people is not None
        # before any model: a regular input file, an image output that is neither the input nor in the data dir
        require_regular_file(photo, error=InvalidImageError)
        check_output(out or Path(f"{Path(photo).stem}.{viewer}.png"), inputs=(photo,), protected=(data_dir,))
        _file_mode(Path(photo), viewer, rules, graph, people, uploader, album, out, seed, as_json)
        return
    if uploader is not None or album is not None:
        raise InvalidInputError("--uploader and --album belong to file mode",
                                help="on the platform they were fixed at upload (`mfmc upload --album`)")
    if server is None and not photo.isdigit() and not data_dir.exists():
        raise InvalidInputError(f"no platform data dir at `{data_dir}` to look `{photo}` up in",
                                help="render the file without a platform: add --rules DIR --graph FILE --people DIR")
    from mfmc.cli.platform import render as platform_render

    platform_render(photo, viewer, out=out, as_json=as_json, data_dir=data_dir, db=db, server=server)


def _file_mode(photo: Path, viewer: str, rules: Path, graph_path: Path, people_dir: Path, uploader: str | None,
               album: str | None, out: Path | None, seed: int, as_json: bool) -> None:
    from mfmc.policy import Context, Engine, Graph, load_policy

    graph = Graph.load(graph_path)
    engine = Engine(load_policy([rules], graph=graph), graph)
    graph.require(viewer)
    if uploader is not None:
        graph.require(uploader)
    if not photo.is_file():
        raise InvalidInputError(f"photo `{photo}` does not exist")
    if not people_dir.is_dir():
        raise InvalidInputError(f"people folder `{people_dir}` does not exist",
                                help="give a folder of reference photos: DIR/<user>.jpg or DIR/<user>/*.jpg")

    from mfmc.filemode import People, render_view
    from mfmc.pool import TargetPool
    from mfmc.swap import FakeGenerator
    from mfmc.vision import FacePipeline, load_image, save_image

    image = load_image(photo)
    pipeline = FacePipeline.default()
    known = People.load(people_dir, pipeline)
    generator = FakeGenerator(pipeline, TargetPool.default())
    view = render_view(image, viewer, engine, known, generator=generator,
                       context=Context(uploader=uploader, album=album), seed=seed)
    target = out or Path(f"{photo.stem}.{viewer}.png")
    save_image(target, view.image)
    if as_json:
        print(json.dumps({"photo": str(photo), "viewer": viewer, "out": str(target),
                          "faces": [f.to_dict() for f in view.faces]}, indent=2))
        return
    for f in view.faces:
        x1, y1, x2, y2 = f.box
        how = "" if f.reveal or f.fallback is None else f" ({MADE[f.fallback.value]})"
        print(f"face {f.index} [{x1:.0f},{y1:.0f},{x2:.0f},{y2:.0f}] {f.owner or 'unknown'}: "
              f"{f.decision.value}{how}")
        for reason in (f.identity.reason, *f.decision.reasons):
            print(f"  - {reason}")
        if f.fallback_reason:
            print(f"  - fake: {f.fallback_reason}")
    n, real = len(view.faces), len(view.revealed)
    print(f"wrote {target} ({plural(n, 'face')}: {real} real, {n - real} fake)")
