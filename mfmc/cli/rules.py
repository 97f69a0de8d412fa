"""`mfmc rules …`: check, explain, audience, analyze, diff and format `.mfmc` files against a social graph file.

Only typer and the standard library are imported at the top; each command imports what it needs (checking rules
never loads numpy).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mfmc.cli.platform import DEFAULT_DIR, DataDirOpt, DbOpt, open_platform

if TYPE_CHECKING:
    from mfmc.policy import Audience, Engine, Graph, PolicySet
    from mfmc.policy.analysis import Analysis

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
    from mfmc.policy import Graph, load_policy

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
    from mfmc.policy import Context

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
    from mfmc.policy import Context

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
    from mfmc.policy import format_rules, load_sources, parse_rules, rule_paths

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


@rules_app.command("analyze")
def analyze(
    rules: RulesOpt,
    graph: GraphOpt,
    face: FaceOpt,
    viewer: Annotated[str | None, typer.Option(
        "--viewer", help="Explain this viewer: one context that reveals and one that fakes.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Over every photo context: who could ever see the real face, who always can, and statements that decide
    nothing. Contexts: uploader = each graph user, one outside the graph, none (and the owner); album = each
    literal in the owner's rules, any other, none."""
    from mfmc.policy import analyze as run_analysis

    social, policy = _load(rules, graph)
    social.require(face)
    result = run_analysis(policy, social, face, viewer=viewer)
    if as_json:
        print(json.dumps(result.to_dict()))
        return
    _print_analysis(result, policy, social)


def _print_analysis(result: Analysis, policy: PolicySet, graph: Graph) -> None:
    from mfmc.policy.analysis import describe_context
    from mfmc.policy.diagnostics import did_you_mean

    users = len(graph)

    owner_policy = policy.get(result.face)
    path = owner_policy.path if owner_policy is not None else None
    uploaders = len({c.uploader for c in result.contexts})
    albums = len({c.album for c in result.contexts})
    print(f"{result.face}: {uploaders} uploader class(es) x {albums} album class(es) over {users} users"
          + ("" if path else "; no rules, so `default nobody`"))
    print(f"  ever:   {_who(result.ever)}")
    print(f"  always: {_who(result.always)}")
    for title, items in (("dead (decide nothing for any viewer in any context)", result.dead),
                         ("redundant (removing all of them together changes no decision)", result.redundant)):
        if items:
            print(f"  {title}:")
            for item in items:
                print(f"    {path}:{item.line}: {item.text}")
    witness = result.witness
    if witness is None:
        return
    who = f"`{witness.viewer}`"
    if witness.viewer is not None and witness.viewer not in graph and witness.viewer != result.face:
        hint = did_you_mean(witness.viewer, graph.users)
        print(f"  note: {who} is not in the graph: answered for any viewer outside it" + (f" ({hint})" if hint else ""))
    if witness.viewer == result.face:
        print(f"  {who} is the owner and always sees their own face")
    elif witness.reveal is None:
        print(f"  {who} never sees the real face")
    elif witness.fake is None:
        print(f"  {who} sees the real face in every context")
    else:
        print(f"  {who} sees the real face in some contexts only:")
    for verdict, context, decision in (("reveal", witness.reveal, witness.reveal_decision),
                                       ("fake", witness.fake, witness.fake_decision)):
        if context is not None and decision is not None and witness.reveal is not None and witness.fake is not None:
            print(f"    {verdict} when {describe_context(context)}:")
            for reason in decision.reasons:
                print(f"      - {reason}")


@rules_app.command("diff")
def diff(
    old: Annotated[Path, typer.Argument(help="The rules before the edit (file or folder).")],
    new: Annotated[Path, typer.Argument(help="The rules after the edit (file or folder).")],
    graph: GraphOpt,
    as_json: JsonOpt = False,
) -> None:
    """Per owner: who gains the real face (sees it under NEW in some context where OLD faked it) and who loses
    it. JSON: one object for one owner, a list for several."""
    from mfmc.policy import Graph, load_policy
    from mfmc.policy import diff as run_diff

    social = Graph.load(graph)
    before, after = load_policy([old], graph=social), load_policy([new], graph=social)
    changes = run_diff(before, after, social)
    if as_json:
        out = [c.to_dict() for c in changes]
        print(json.dumps(out[0] if len(out) == 1 else out))
        return
    if not changes:
        print("no rules on either side")
    for change in changes:
        if not change.changed:
            print(f"{change.face}: no change")
            continue
        more = _count(change.gained, change.strangers_gain)
        fewer = _count(change.lost, change.strangers_lose)
        print(f"{change.face}: the real face is gained by {more} and lost by {fewer} (in some context)")
        print(f"  gains: {_who(change.gains)}")
        print(f"  loses: {_who(change.loses)}")


def _count(users: int, strangers: bool) -> str:
    text = f"{users} graph user{'s' if users != 1 else ''}"
    return text + (" and viewers outside the graph" if strangers else "")


def _who(audience: Audience) -> str:
    from mfmc.policy import Everyone, Only

    if isinstance(audience, Everyone):
        return "everyone" + (f" except {', '.join(sorted(audience.except_))}" if audience.except_ else "") \
            + " (viewers outside the graph too)"
    if isinstance(audience, Only):
        return ", ".join(sorted(audience.users))
    return "no one but the owner"


def _load(rules: Path, graph_path: Path) -> tuple[Graph, PolicySet]:
    from mfmc.policy import Graph, load_policy

    graph = Graph.load(graph_path)
    return graph, load_policy([rules], graph=graph)


def _engine(rules: Path, graph_path: Path) -> Engine:
    from mfmc.policy import Engine

    graph, policy = _load(rules, graph_path)
    return Engine(policy, graph)


# `mfmc rules set` is store-backed: it shares the platform commands' data-dir and database options.
@rules_app.command("set")
def set_rules(
    files: Annotated[list[Path], typer.Argument(help="Rule files to store, one owner per file.")],
    data_dir: DataDirOpt = DEFAULT_DIR,
    db: DbOpt = None,
) -> None:
    """Validate rule files, sign each with its owner's key (client side) and store them on the platform."""
    from mfmc.policy import load_sources, rule_paths

    sources = [(text, str(path)) for text, path in load_sources(rule_paths(files))]
    with open_platform(data_dir, db) as platform:
        owners = platform.set_rules_many(sources)  # all files or none (an owner in two files is an error)
    for owner, (_, path) in zip(owners, sources, strict=True):
        print(f"set: rules of {owner} from {path} (signed)")
