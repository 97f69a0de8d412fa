"""`mfmc rules …`: check, explain, audience and format `.mfmc` files against a social graph file."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from mfmc.cli.platform import DEFAULT_DIR, DataDirOpt, DbOpt, open_platform
from mfmc.policy import Context, Engine, Graph, format_rules, load_policy, parse_rules
from mfmc.policy.compiler import load_sources, rule_paths

rules_app = typer.Typer(help="Write, check and query per-face access rules (`.mfmc` files).", no_args_is_help=True)

RulesOpt = Annotated[Path, typer.Option("--rules", help="Folder (or file) of .mfmc rule files.")]
GraphOpt = Annotated[Path, typer.Option("--graph", help="Social graph file (TOML or JSON).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
FaceOpt = Annotated[str, typer.Option("--face", help="The owner of the face.")]
UploaderOpt = Annotated[str | None, typer.Option("--uploader", help="Who uploaded the photo.")]
AlbumOpt = Annotated[str | None, typer.Option("--album", help="The photo's album.")]


@rules_app.command("check")
def check(
    paths: Annotated[list[Path], typer.Argument(help="Rule files or folders.")],
    graph: Annotated[Path | None, typer.Option("--graph", help="Also check user names against it.")] = None,
) -> None:
    """Validate rule files: prints `path:line:col: error: …`; exit 0 when valid, 2 when not."""
    policy = load_policy(paths, graph=Graph.load(graph) if graph else None)
    for warning in policy.warnings:
        print(warning.render(), file=sys.stderr)
    count = len(policy)
    print(f"ok: {count} rule file{'s' if count != 1 else ''} valid"
          + (f", {len(policy.warnings)} warning(s)" if policy.warnings else ""))


@rules_app.command("explain")
def explain(
    rules: RulesOpt,
    graph: GraphOpt,
    face: FaceOpt,
    viewer: Annotated[str, typer.Option("--viewer", help="Who is looking.")],
    uploader: UploaderOpt = None,
    album: AlbumOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print `reveal` or `fake` for one viewer and face, with the reasons."""
    engine = _engine(rules, graph)
    engine.graph.require(face)
    decision = engine.check(viewer, face, Context(uploader=uploader, album=album))
    if as_json:
        print(json.dumps(decision.to_dict()))
        return
    print(decision.value)
    for reason in decision.reasons:
        print(f"  - {reason}")


@rules_app.command("audience")
def audience(
    rules: RulesOpt,
    graph: GraphOpt,
    face: FaceOpt,
    uploader: UploaderOpt = None,
    album: AlbumOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Who sees the real face: `everyone except …`, `only …` or `nobody` (the owner always does)."""
    engine = _engine(rules, graph)
    engine.graph.require(face)
    result = engine.audience(face, Context(uploader=uploader, album=album))
    print(json.dumps(result.to_dict()) if as_json else result.describe())


@rules_app.command("fmt")
def fmt(
    paths: Annotated[list[Path], typer.Argument(help="Rule files or folders.")],
    write: Annotated[bool, typer.Option("--write", "-w", help="Rewrite the files in place.")] = False,
    check_only: Annotated[bool, typer.Option("--check", help="Exit 1 if a file is not formatted.")] = False,
) -> None:
    """Print the canonical form of rule files (comments kept)."""
    unformatted = []
    files = rule_paths(paths)
    for text, path in load_sources(files):
        formatted = format_rules(parse_rules(text, path))
        if check_only:
            if formatted != text:
                unformatted.append(path)
        elif write:
            if formatted != text:
                Path(path).write_text(formatted, encoding="utf-8")
        else:
            if len(files) > 1:
                print(f"# {path}")
            sys.stdout.write(formatted)
    if unformatted:
        for path in unformatted:
            print(f"would reformat {path}", file=sys.stderr)
        raise typer.Exit(1)


def _engine(rules: Path, graph_path: Path) -> Engine:
    graph = Graph.load(graph_path)
    policy = load_policy([rules], graph=graph)
    return Engine(policy, graph)


# `mfmc rules set` is store-backed: it shares the platform commands' data-dir and database options.
@rules_app.command("set")
def set_rules(
    files: Annotated[list[Path], typer.Argument(help="Rule files to store, one owner per file.")],
    data_dir: DataDirOpt = DEFAULT_DIR,
    db: DbOpt = None,
) -> None:
    """Validate rule files, sign each with its owner's key (client side) and store them on the platform."""
    with open_platform(data_dir, db) as platform:
        for text, path in load_sources(rule_paths(files)):
            owner = platform.set_rules(text, str(path))
            print(f"set: rules of {owner} from {path} (signed)")
