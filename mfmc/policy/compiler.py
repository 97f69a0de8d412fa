"""Compile parsed and validated rule files into an immutable `PolicySet`."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from pathlib import Path
from types import MappingProxyType

from mfmc.errors import RuleError
from mfmc.policy import ast
from mfmc.policy.diagnostics import Diagnostic, Severity, line_of
from mfmc.policy.formatter import format_statement
from mfmc.policy.graph import Graph
from mfmc.policy.model import (
    CompiledRule,
    DefaultAudience,
    DefaultSource,
    FakesMode,
    OwnerPolicy,
    PolicySet,
    compile_condition,
    resolve,
)
from mfmc.policy.parser import parse_rules, read_rules_file, strip_comment
from mfmc.policy.validator import validate

RULE_SUFFIX = ".mfmc"


def compile_file(rule_file: ast.RuleFile, text: str | None = None, users: Collection[str] | None = None) -> OwnerPolicy:
    """Validate and compile one file; raises `RuleError` with every error found (warnings are dropped here:
    `compile_sources` collects them)."""
    found = validate(rule_file, text, users)
    if any(d.is_error for d in found):
        raise RuleError(found)
    return _compile_valid(rule_file, text)


def _compile_valid(rule_file: ast.RuleFile, text: str | None) -> OwnerPolicy:
    """Compile a file `validate` found no error in. Every word is resolved into its enum here."""
    owner = rule_file.of_type(ast.FaceDecl)[0].owner.value
    defaults = rule_file.of_type(ast.DefaultDecl)
    fakes = rule_file.of_type(ast.FakesDecl)
    groups: dict[str, frozenset[str]] = {}
    rules: list[CompiledRule] = []
    lines = text.splitlines() if text is not None else None
    for statement in rule_file.statements:
        if isinstance(statement, ast.GroupDecl):
            members: set[str] = set()
            for m in statement.members:
                members |= groups.get(m.value, frozenset((m.value,)))
            groups[statement.name.value] = frozenset(members)
        elif isinstance(statement, ast.Rule):
            source = _source_of(statement, lines)
            condition = compile_condition(statement.condition, groups) if statement.condition is not None else None
            for name in statement.audience:
                rules.append(CompiledRule(statement.effect is ast.Effect.HIDE, resolve(name.value, groups),
                                          condition, source, statement.span))
    default = defaults[0] if defaults else None
    return OwnerPolicy(
        owner=owner,
        default=DefaultAudience.parse(default.level.value) if default else DefaultAudience.NOBODY,
        rules=tuple(rules),
        groups=MappingProxyType(dict(groups)),
        fakes=FakesMode.parse(fakes[0].mode.value) if fakes else FakesMode.PER_PHOTO,
        path=rule_file.path,
        default_source=DefaultSource(default.span, _source_of(default, lines)) if default else None,
    )


def _source_of(rule: ast.Rule | ast.DefaultDecl, lines: list[str] | None) -> str:
    """The statement as written (without its comment), for reasons."""
    if lines is None or not 1 <= rule.span.line <= len(lines):
        return format_statement(rule)
    return strip_comment(lines[rule.span.line - 1]).strip()


def compile_sources(sources: Iterable[tuple[str, str]], graph: Graph | None = None) -> PolicySet:
    """Parse, validate and compile `(text, path)` pairs; raises `RuleError` listing every error found."""
    users = set(graph.users) if graph is not None else None
    diagnostics: list[Diagnostic] = []
    owners: dict[str, OwnerPolicy] = {}
    for text, path in sources:
        try:
            rule_file = parse_rules(text, path)
        except RuleError as err:
            diagnostics.extend(err.diagnostics)
            continue
        found = validate(rule_file, text, users)
        diagnostics.extend(found)
        if any(d.is_error for d in found):
            continue
        policy = _compile_valid(rule_file, text)
        if policy.owner in owners:
            span = rule_file.of_type(ast.FaceDecl)[0].span
            diagnostics.append(Diagnostic(Severity.ERROR, f"rules for `{policy.owner}` are defined twice",
                                          span, line_of(text, span.line),
                                          help=f"they are also in `{owners[policy.owner].path}`"))
            continue
        owners[policy.owner] = policy
    errors = [d for d in diagnostics if d.is_error]
    if errors:
        raise RuleError(diagnostics)
    return PolicySet(MappingProxyType(owners), tuple(diagnostics))


def rule_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Expand files and folders (recursively, `*.mfmc`) into a sorted list of rule files."""
    found: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found.extend(sorted(p.rglob(f"*{RULE_SUFFIX}")))
        elif p.exists():
            found.append(p)
        else:
            raise RuleError([Diagnostic(Severity.ERROR, f"no such file or folder `{p}`", ast.Span(str(p), 1, 1))])
    return found


def load_sources(paths: Iterable[str | Path]) -> list[tuple[str, str]]:
    """Read rule files (or folders of them) as `(text, path)` pairs; unreadable files raise `RuleError`."""
    sources, diagnostics = [], []
    for path in rule_paths(paths):
        try:
            sources.append((read_rules_file(path), str(path)))
        except RuleError as err:
            diagnostics.extend(err.diagnostics)
    if diagnostics:
        raise RuleError(diagnostics)
    return sources


def load_policy(paths: Iterable[str | Path], graph: Graph | None = None) -> PolicySet:
    """Load and compile every rule file under `paths`."""
    return compile_sources(load_sources(paths), graph=graph)
