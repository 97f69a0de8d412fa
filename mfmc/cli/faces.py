"""`mfmc faces IMAGE|FOLDER [--json] [--annotate OUT]` and `mfmc doctor`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mfmc.cli.folders import over_folder
from mfmc.errors import MfmcError

if TYPE_CHECKING:
    from mfmc.vision import FacePipeline


def faces_command(
    image: Annotated[Path, typer.Argument(help="A photo, or a folder of photos (searched recursively).")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON: a list of faces (an object per file for a folder).")
    ] = False,
    annotate: Annotated[
        Path | None,
        typer.Option("--annotate", help="Write a copy with boxes and landmarks (a folder for folder input)."),
    ] = None,
    attributes: Annotated[bool, typer.Option("--attributes/--no-attributes", help="Estimate age and gender.")] = True,
) -> None:
    """Find faces: box (x1, y1, x2, y2) in pixels of the upright photo, score, 5 landmarks, age, gender."""
    from mfmc.errors import InvalidImageError
    from mfmc.files import require_regular_file
    from mfmc.vision import FacePipeline

    if not image.is_dir():  # refuse `/dev/zero`, a FIFO, a missing file before loading any model
        require_regular_file(image, error=InvalidImageError)
    pipe = FacePipeline.default()
    # the detector (then age/gender) loads in the background while the photo is read (and its faces detected)
    pipe.preload(detector=True, attributes=attributes, expressions=attributes)
    if not image.is_dir():
        records = _faces_of(pipe, image, annotate, attributes)
        if as_json:
            print(json.dumps(records))
        else:
            _print_table(image, records)
        return

    def find(path: Path, name: str) -> list[dict[str, Any]]:
        out = annotate / Path(name).with_suffix(".png") if annotate else None
        return _faces_of(pipe, path, out, attributes)

    results, failed = over_folder(image, "finding faces", find)
    if as_json:
        print(json.dumps(results))
    else:
        for name, records in results.items():
            if isinstance(records, list):
                _print_table(Path(name), records)
    if failed:
        raise typer.Exit(2)


def _faces_of(pipe: FacePipeline, path: Path, annotate: Path | None, attributes: bool) -> list[dict[str, Any]]:
    from mfmc.vision import read_image, save_image
    from mfmc.vision.draw import annotate as draw

    loaded = read_image(path)
    faces = pipe.detect(loaded.image)
    if attributes and len(faces):
        faces = pipe.analyze(loaded.image, faces, landmarks=False, recognizers=())
    if annotate is not None:
        save_image(annotate, draw(loaded.image, faces))
    # A huge JPEG is decoded reduced: report coordinates in the original's pixels.
    return faces.scaled(1.0 / loaded.scale).to_records()


def _print_table(path: Path, records: list[dict[str, Any]]) -> None:
    print(f"{path}: {len(records)} face{'s' if len(records) != 1 else ''}")
    for i, r in enumerate(records):
        x1, y1, x2, y2 = r["box"]
        extra = f"  {r['gender']} ~{r['age']:.0f}" if r.get("age") is not None else ""
        print(f"  {i:>3}  box {x1:.0f},{y1:.0f},{x2:.0f},{y2:.0f}  score {r['score']:.2f}{extra}")


def doctor_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    verify: Annotated[bool, typer.Option("--verify/--no-verify", help="Check every model file's sha256.")] = True,
) -> None:
    """Backends, model files found (with licenses), and onnxruntime execution providers."""
    from mfmc.eval.judges import ExpressionJudge, GenderJudge, judges_missing
    from mfmc.vision.doctor import report

    data = report(verify=verify)
    missing = judges_missing()  # the evaluation's outside judges (`mfmc.eval.photos`), never the generator's
    data["judges"] = {"names": [GenderJudge.name, ExpressionJudge.name], "available": missing is None,
                      "missing": missing or ""}
    if as_json:
        print(json.dumps(data, indent=2))
    else:
        _print_doctor(data)
    if not data["ok"]:
        raise MfmcError("some required models are missing or altered", help="reinstall mfmc: pip install -e .")


def _print_doctor(data: dict[str, Any]) -> None:
    print(f"backend: {data['backend']}")
    print(f"model cache: {data['model_cache'] or 'off'} (MFMC_CACHE_DIR; safe to delete)")
    print(f"onnxruntime providers: {', '.join(data['providers']['available'])} "
          f"(using {', '.join(data['providers']['chosen'])})")
    print("models:")
    for m in data["models"]:
        state = "ok" if m["found"] and m["sha256_ok"] is not False else (
            "ALTERED" if m["found"] else ("absent" if m.get("optional") else "MISSING"))
        commercial = {"no": "  NON-COMMERCIAL", "unknown": "  license unknown"}.get(m["commercial_use"], "")
        print(f"  {m['name']:<18} {state:<8} {m['task']:<42} {m['license'].split(';')[0]}{commercial}")
    print("recognizers (`mfmc anonymize --verifiers`):")
    for r in data["recognizers"]:
        role = "" if r["verifier"] else " (evaluation only, not a verifier)"
        print(f"  {r['name']:<18} " + ("available" if r["available"] else f"absent (optional): {r['missing']}")
              + role)
    e = data["expression"]
    print("expression classifier: " + ("available" if e["available"] else f"absent (optional): {e['missing']}"))
    j = data["judges"]
    print(f"outside judges of `mfmc.eval.photos` ({', '.join(j['names'])}): "
          + ("available" if j["available"] else f"absent (optional): {j['missing']}"))
    ins = data["insightface"]
    print(f"insightface: root `{ins['root']}`: " + (f"pack `{ins['pack']}` ({', '.join(ins['files'])})"
                                                    if ins["pack"] else "no pack found (optional)"))
    for name, version in data["packages"].items():
        print(f"  {name} {version}")

