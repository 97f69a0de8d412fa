"""The canonical text of a rule file: `mfmc rules fmt`. Comments are kept; `parse(format(x)) == x`."""

from __future__ import annotations

from mfmc.policy import ast


def format_condition(c: ast.Condition, parent: str | None = None) -> str:
    """Render a condition with only the parentheses its structure needs (nested and/or keep theirs, so the
    tree parses back exactly)."""
    match c:
        case ast.UploaderIn(audience, negated):
            return f"uploader {'not in' if negated else 'in'} {_names(audience)}"
        case ast.AlbumIs(album, negated):
            return f"album {'!=' if negated else '=='} {_quote(album)}"
        case ast.Not(operand):
            inner = format_condition(operand, "not")
            return f"not {inner}"
        case ast.And(operands):
            text = " and ".join(format_condition(o, "and") for o in operands)
            return f"({text})" if parent in ("not", "and") else text
        case ast.Or(operands):
            text = " or ".join(format_condition(o, "or") for o in operands)
            return f"({text})" if parent in ("not", "and", "or") else text
    raise AssertionError(f"unknown condition {c!r}")


def format_statement(s: ast.Statement) -> str:
    match s:
        case ast.FaceDecl(owner):
            return f"face {owner.value}"
        case ast.DefaultDecl(level):
            return f"default {level.value}"
        case ast.GroupDecl(name, members):
            return f"group {name.value} = {_names(members)}"
        case ast.FakesDecl(mode):
            return f"fakes {mode.value}"
        case ast.Rule(effect, audience, condition):
            head = "reveal to" if effect is ast.Effect.REVEAL else "hide from"
            when = f" when {format_condition(condition)}" if condition is not None else ""
            return f"{head} {_names(audience)}{when}"
    raise AssertionError(f"unknown statement {s!r}")


def format_rules(rule_file: ast.RuleFile) -> str:
    """Canonical layout: statements in their order, single-spaced, one blank line between sections
    (declarations, groups, statements); comments kept above and at the end of their statement."""
    lines: list[str] = []
    previous: object = None
    for s in rule_file.statements:
        kind = type(s)
        section = kind if kind in (ast.GroupDecl, ast.Rule) else "header"
        if lines and section != previous:
            lines.append("")
        previous = section
        lines.extend(f"# {c}" if c else "#" for c in s.comments.above)
        text = format_statement(s)
        lines.append(f"{text}  # {s.comments.trailing}" if s.comments.trailing is not None else text)
    if rule_file.trailing_comments:
        lines.append("")
        lines.extend(f"# {c}" if c else "#" for c in rule_file.trailing_comments)
    return "\n".join(lines) + "\n"


def _names(names: tuple[ast.Name, ...]) -> str:
    return ", ".join(n.value for n in names)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
