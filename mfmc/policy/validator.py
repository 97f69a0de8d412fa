"""Static checks of one parsed rule file: the errors that make it invalid, and warnings worth reading."""

from __future__ import annotations

from collections.abc import Collection

from mfmc.policy import ast
from mfmc.policy.conditions import condition_names, depth, satisfiable
from mfmc.policy.diagnostics import Diagnostic, Severity, did_you_mean
from mfmc.policy.model import (
    DEFAULT_LEVELS,
    EVERYONE_WORDS,
    FAKES_MODES,
    RELATIONS,
    RESERVED,
    Level,
    resolve,
)
from mfmc.policy.parser import MAX_NESTING

AUDIENCE_WORDS = (*RELATIONS, *EVERYONE_WORDS)


class _Checker:
    def __init__(self, rule_file: ast.RuleFile, text: str | None, users: Collection[str] | None) -> None:
        self.file = rule_file
        self.lines = text.splitlines() if text is not None else None
        self.users = users
        self.out: list[Diagnostic] = []

    def report(self, severity: Severity, message: str, span: ast.Span, help: str | None = None,
               width: int = 1) -> None:
        source = self.lines[span.line - 1] if self.lines and 1 <= span.line <= len(self.lines) else None
        self.out.append(Diagnostic(severity, message, span, source, help, width))

    def error(self, message: str, span: ast.Span, help: str | None = None, width: int = 1) -> None:
        self.report(Severity.ERROR, message, span, help, width)

    def warn(self, message: str, span: ast.Span, help: str | None = None, width: int = 1) -> None:
        self.report(Severity.WARNING, message, span, help, width)

    def run(self) -> list[Diagnostic]:
        faces = self.file.of_type(ast.FaceDecl)
        owner = faces[0].owner.value if faces else None
        if not faces:
            self.error("missing `face` declaration", ast.Span(self.file.path, 1, 1),
                       help="start the file with `face NAME`, the owner these rules govern")
        for extra in faces[1:]:
            self.error("`face` declared more than once", extra.span,
                       help=f"this file already governs `{owner}` (line {faces[0].span.line})")
        self._single(ast.DefaultDecl, "default")
        self._single(ast.FakesDecl, "fakes")
        if owner is not None:
            self._check_name(faces[0].owner, {}, as_user=True)

        groups: dict[str, frozenset[str]] = {}
        group_lines: dict[str, int] = {}
        later_groups = {g.name.value: g.span.line for g in self.file.of_type(ast.GroupDecl)}
        seen_rules: dict[tuple, int] = {}
        for statement in self.file.statements:
            match statement:
                case ast.DefaultDecl(level):
                    if level.value not in DEFAULT_LEVELS:
                        self.error(f"unknown default level `{level.value}`", level.span,
                                   help=did_you_mean(level.value, DEFAULT_LEVELS)
                                   or f"use one of: {', '.join(DEFAULT_LEVELS)}", width=len(level.value))
                case ast.FakesDecl(mode):
                    if mode.value not in FAKES_MODES:
                        self.error(f"unknown fakes mode `{mode.value}`", mode.span,
                                   help=did_you_mean(mode.value, FAKES_MODES)
                                   or f"use one of: {', '.join(FAKES_MODES)}", width=len(mode.value))
                case ast.GroupDecl(name, members):
                    self._group(name, members, owner, groups, group_lines)
                case ast.Rule(effect, audience, condition):
                    self._rule(statement, owner, groups, later_groups)
                    key = (effect, tuple(sorted(n.value for n in audience)), condition)
                    if key in seen_rules:
                        self.warn(f"duplicate of the statement on line {seen_rules[key]}", statement.span,
                                  help="remove one of them")
                    else:
                        seen_rules[key] = statement.span.line
        self._shadowed(groups)
        return self.out

    def _single(self, kind: type, keyword: str) -> None:
        decls = self.file.of_type(kind)
        for extra in decls[1:]:
            self.error(f"`{keyword}` declared more than once", extra.span,
                       help=f"keep one `{keyword}` (the first is on line {decls[0].span.line})")

    def _group(self, name: ast.Name, members: tuple[ast.Name, ...], owner: str | None,
               groups: dict[str, frozenset[str]], group_lines: dict[str, int]) -> None:
        if name.value in groups:
            self.error(f"group `{name.value}` is already defined", name.span, width=len(name.value),
                       help=f"the first definition is on line {group_lines[name.value]}; rename one of them")
            return
        if name.value in RESERVED or name.value == owner:
            self.error(f"`{name.value}` cannot be a group name", name.span, width=len(name.value),
                       help="it is a reserved audience word" if name.value in RESERVED else "it is the owner")
            return
        if self.users is not None and name.value in self.users:
            self.warn(f"group `{name.value}` hides the user `{name.value}` in this file", name.span,
                      width=len(name.value))
        users: set[str] = set()
        for member in members:
            if member.value in RESERVED:
                self.error(f"`{member.value}` cannot be a group member", member.span, width=len(member.value),
                           help="groups list users (or groups defined above)")
            elif member.value in groups:
                users |= groups[member.value]
            else:
                if member.value == owner:
                    self.warn(f"group `{name.value}` includes the owner `{owner}`", member.span,
                              width=len(member.value), help="the owner always sees their own face")
                else:
                    self._check_name(member, groups, as_user=True)
                users.add(member.value)
        groups[name.value] = frozenset(users)
        group_lines[name.value] = name.span.line

    def _rule(self, rule: ast.Rule, owner: str | None, groups: dict[str, frozenset[str]],
              later_groups: dict[str, int]) -> None:
        for name in rule.audience:
            if name.value == "nobody":
                self.error("`nobody` is only valid in `default`", name.span, width=len(name.value),
                           help="to hide from every viewer, write `hide from everyone`")
            elif owner is not None and name.value == owner:
                self.error(f"a statement names the owner `{owner}`", name.span, width=len(name.value),
                           help="the owner always sees their own face; remove the name")
            else:
                self._check_audience_name(name, groups, later_groups)
        for name in condition_names(rule.condition):
            if name.value == "nobody":
                self.error("`nobody` is only valid in `default`", name.span, width=len(name.value))
            elif name.value != owner:
                self._check_audience_name(name, groups, later_groups)
        if rule.condition is not None:
            if depth(rule.condition) > MAX_NESTING:
                self.error(f"condition is nested more than {MAX_NESTING} levels deep", rule.span)
            elif not satisfiable(rule.condition):
                self.warn("this statement can never apply: its condition is never true", rule.span,
                          help="check the `when` clause")
        for name in rule.audience:
            target = resolve(name.value, groups)
            if target.level is Level.GROUP and not target.users:
                self.warn(f"group `{name.value}` is empty, so this part never applies", name.span,
                          width=len(name.value))

    def _check_audience_name(self, name: ast.Name, groups: dict[str, frozenset[str]],
                             later_groups: dict[str, int]) -> None:
        if name.value in AUDIENCE_WORDS or name.value in groups:
            return
        if name.value in later_groups:
            self.error(f"group `{name.value}` is used before its definition", name.span, width=len(name.value),
                       help=f"move `group {name.value} = …` (line {later_groups[name.value]}) above this line")
            return
        self._check_name(name, groups, as_user=False)

    def _check_name(self, name: ast.Name, groups: dict[str, frozenset[str]], *, as_user: bool) -> None:
        """A user name must be known to the graph (when one is given)."""
        if self.users is None or name.value in self.users:
            return
        choices = [*self.users] if as_user else [*self.users, *groups, *AUDIENCE_WORDS]
        hint = did_you_mean(name.value, choices)
        close_group = hint is not None and hint.removeprefix("did you mean `").removesuffix("`?") in groups
        if close_group:
            self.error(f"unknown group or user `{name.value}`", name.span, help=hint, width=len(name.value))
        else:
            self.warn(f"unknown user `{name.value}`", name.span, width=len(name.value),
                      help=hint or "the name is not in the social graph, so it never matches a viewer")

    def _shadowed(self, groups: dict[str, frozenset[str]]) -> None:
        """Warn about reveals that an unconditional hide of the same audience always overrides."""
        hides: dict[str, int] = {}
        for rule in self.file.of_type(ast.Rule):
            if rule.effect is ast.Effect.HIDE and rule.condition is None:
                for name in rule.audience:
                    hides.setdefault(_canonical(name.value), rule.span.line)
        for rule in self.file.of_type(ast.Rule):
            if rule.effect is not ast.Effect.REVEAL:
                continue
            for name in rule.audience:
                line = hides.get(_canonical(name.value))
                if line is not None:
                    self.warn(f"`reveal to {name.value}` can never apply: `hide from {name.value}` on line "
                              f"{line} always wins", name.span, width=len(name.value),
                              help="at equal specificity, hide beats reveal")


def _canonical(name: str) -> str:
    return "everyone" if name in EVERYONE_WORDS else name


def validate(rule_file: ast.RuleFile, text: str | None = None,
             users: Collection[str] | None = None) -> list[Diagnostic]:
    """All diagnostics for one file, errors and warnings, in source order."""
    found = _Checker(rule_file, text, users).run()
    return sorted(found, key=lambda d: (d.span.line, d.span.column))
