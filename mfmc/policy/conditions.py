"""Evaluating `when` conditions, and deciding whether one can ever hold (for validator warnings)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

from mfmc.errors import RuleError
from mfmc.policy import ast
from mfmc.policy.model import AlbumIs, AllOf, AnyOf, NotP, Predicate, Target, UploaderIn


@dataclass(frozen=True)
class Context:
    """What is known about the photo being viewed. `None` means unknown."""

    uploader: str | None = None
    album: str | None = None


# Membership test of the uploader: is `user` (None = no uploader) in `target`, relative to the rules' owner?
Membership = Callable[[str | None, Target], bool]


def holds(condition: Predicate | None, context: Context, member: Membership) -> bool:
    """Whether a compiled condition is true in `context` (an absent condition always holds)."""
    match condition:
        case None:
            return True
        case UploaderIn(targets, negated):
            inside = any(member(context.uploader, t) for t in targets)
            return inside != negated
        case AlbumIs(album, negated):
            return (context.album == album) != negated
        case NotP(operand):
            return not holds(operand, context, member)
        case AllOf(operands):
            return all(holds(o, context, member) for o in operands)
        case AnyOf(operands):
            return any(holds(o, context, member) for o in operands)
    raise RuleError([], f"unknown condition `{condition!r}`")


def depth(condition: ast.Condition | None) -> int:
    match condition:
        case None | ast.UploaderIn() | ast.AlbumIs():
            return 0 if condition is None else 1
        case ast.Not(operand):
            return 1 + depth(operand)
        case ast.And(operands) | ast.Or(operands):
            return 1 + max(depth(o) for o in operands)
    raise AssertionError(f"unknown condition {condition!r}")


MAX_ATOMS = 12


def satisfiable(condition: ast.Condition | None) -> bool:
    """False only when no context can make `condition` true.

    Uploader atoms are treated as independent (except an atom and its negation), album atoms as one variable;
    with too many atoms it answers True (no warning rather than a wrong one).
    """
    if condition is None:
        return True
    uploader_atoms: dict[tuple[str, ...], int] = {}
    albums: set[str] = set()
    _collect(condition, uploader_atoms, albums)
    if len(uploader_atoms) > MAX_ATOMS:
        return True
    album_values: list[str | None] = [*sorted(albums), None]
    for bits in itertools.product((False, True), repeat=len(uploader_atoms)):
        for album in album_values:
            if _eval_abstract(condition, dict(zip(uploader_atoms, bits, strict=True)), album):
                return True
    return False


def _key(audience: tuple[ast.Name, ...]) -> tuple[str, ...]:
    return tuple(sorted({n.value for n in audience}))


def _collect(c: ast.Condition, atoms: dict[tuple[str, ...], int], albums: set[str]) -> None:
    match c:
        case ast.UploaderIn(audience):
            atoms.setdefault(_key(audience), len(atoms))
        case ast.AlbumIs(album):
            albums.add(album)
        case ast.Not(operand):
            _collect(operand, atoms, albums)
        case ast.And(operands) | ast.Or(operands):
            for o in operands:
                _collect(o, atoms, albums)


def _eval_abstract(c: ast.Condition, atoms: dict[tuple[str, ...], bool], album: str | None) -> bool:
    match c:
        case ast.UploaderIn(audience, negated):
            return atoms[_key(audience)] != negated
        case ast.AlbumIs(value, negated):
            return (album == value) != negated
        case ast.Not(operand):
            return not _eval_abstract(operand, atoms, album)
        case ast.And(operands):
            return all(_eval_abstract(o, atoms, album) for o in operands)
        case ast.Or(operands):
            return any(_eval_abstract(o, atoms, album) for o in operands)
    raise AssertionError(f"unknown condition {c!r}")


def condition_names(c: ast.Condition | None) -> list[ast.Name]:
    """Every audience name used in `c`, for validation."""
    match c:
        case None | ast.AlbumIs():
            return []
        case ast.UploaderIn(audience):
            return list(audience)
        case ast.Not(operand):
            return condition_names(operand)
        case ast.And(operands) | ast.Or(operands):
            return [n for o in operands for n in condition_names(o)]
    raise AssertionError(f"unknown condition {c!r}")
