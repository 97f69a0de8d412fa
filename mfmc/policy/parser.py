"""Parse `.mfmc` text into a `RuleFile`, turning every Lark error into a positioned project diagnostic."""

from __future__ import annotations

import functools
from dataclasses import replace
from importlib import resources
from pathlib import Path

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from mfmc.errors import InvalidInputError, RuleError
from mfmc.files import read_regular_file
from mfmc.policy import ast
from mfmc.policy.diagnostics import Diagnostic, Severity, did_you_mean, line_of

STATEMENT_KEYWORDS = ("face", "default", "group", "reveal", "hide", "fakes")
MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_NESTING = 64

# Human names for grammar terminals, used in "expected …" messages.
_TERMINALS = {
    "NAME": "a name",
    "STRING": 'a quoted string like "wedding"',
    "_NL": "end of line",
    "$END": "end of file",
    "EQUAL": "`=`",
    "COMMA": "`,`",
    "LPAR": "`(`",
    "RPAR": "`)`",
    "__ANON_0": "`==`",
    "__ANON_1": "`!=`",
}


@functools.cache
def _lark() -> Lark:
    grammar = resources.files("mfmc.policy").joinpath("grammar.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=False)


def read_rules_file(path: str | Path) -> str:
    """Read a rule file as UTF-8 text, refusing binary, non-UTF-8 and oversized files with a clear error."""
    p = Path(path)
    try:  # regular files only: `/dev/zero` or a FIFO is refused before reading
        data = read_regular_file(p, max_bytes=MAX_FILE_BYTES)
    except InvalidInputError as err:
        raise RuleError([_diag(err.message, str(p), 1, 1, help=err.help)]) from None
    if b"\x00" in data:
        raise RuleError(
            [_diag(f"`{p}` is not a text file", str(p), 1, 1, help="rule files are UTF-8 text")]
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        before = data[: err.start]
        line = before.count(b"\n") + 1
        column = len(before) - (before.rfind(b"\n") + 1) + 1
        raise RuleError(
            [_diag("invalid UTF-8 byte", str(p), line, column, help="save the file as UTF-8")]
        ) from None


def parse_rules(text: str, path: str = "<memory>") -> ast.RuleFile:
    """Parse one file's text; raises `RuleError` with a positioned diagnostic on any syntax error."""
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        tree = _lark().parse(text)
    except UnexpectedInput as err:
        raise RuleError([_syntax_diagnostic(err, text, path)]) from None
    except RecursionError:
        raise RuleError([_diag("rules are nested too deeply", path, 1, 1)]) from None
    try:
        statements = tuple(_Builder(path, text).statement(child) for child in tree.children)
    except RecursionError:
        raise RuleError([_diag("condition is nested too deeply", path, 1, 1)]) from None
    statements, trailing = _attach_comments(statements, text)
    return ast.RuleFile(path=path, statements=statements, trailing_comments=trailing)


def _diag(message: str, path: str, line: int, column: int, *, text: str | None = None,
          help: str | None = None, width: int = 1) -> Diagnostic:
    source = line_of(text, line) if text is not None else None
    return Diagnostic(Severity.ERROR, message, ast.Span(path, line, column), source, help, width)


def _syntax_diagnostic(err: UnexpectedInput, text: str, path: str) -> Diagnostic:
    line, column = max(1, err.line if err.line > 0 else 1), max(1, err.column if err.column > 0 else 1)
    if isinstance(err, UnexpectedCharacters):
        char = text[err.pos_in_stream] if err.pos_in_stream < len(text) else ""
        if char == '"':
            return _diag("unterminated string", path, line, column, text=text,
                         help='close the string with `"` on the same line')
        shown = char if char.isprintable() else repr(char)
        return _diag(f"unexpected character `{shown}`", path, line, column, text=text)
    if isinstance(err, UnexpectedToken) and err.token.type != "$END":
        token: Token = err.token
        expected = {t for t in err.expected if not t.startswith("$")}
        if token.type == "NAME" and _at_statement_start(text, token):
            return _diag(f"unknown keyword `{token}`", path, line, column, text=text, width=len(token),
                         help=did_you_mean(str(token), STATEMENT_KEYWORDS)
                         or f"a statement starts with one of: {', '.join(STATEMENT_KEYWORDS)}")
        value = str(token.value).strip()
        shown = "end of line" if token.type == "_NL" else f"`{value}`"
        return _diag(f"unexpected {shown}", path, line, column, text=text, width=max(1, len(value)),
                     help=_expected_help(expected))
    expected = set(err.expected or ()) if isinstance(err, UnexpectedToken | UnexpectedEOF) else set()
    last = text.rstrip("\n").splitlines() or [""]
    return _diag("unexpected end of file", path, len(last), len(last[-1]) + 1, text=text,
                 help=_expected_help(expected))


def _at_statement_start(text: str, token: Token) -> bool:
    line = line_of(text, token.line) or ""
    return line[: token.column - 1].strip() == ""


def _expected_help(expected: set[str]) -> str | None:
    if not expected:
        return None
    names = sorted(_TERMINALS.get(t, f"`{t.lower()}`") for t in expected)
    return "expected " + (names[0] if len(names) == 1 else "one of: " + ", ".join(names))


class _Builder:
    """Turns the Lark tree into AST nodes; iterative enough that only conditions recurse."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.text = text

    def span(self, node: Tree | Token) -> ast.Span:
        if isinstance(node, Token):
            return ast.Span(self.path, node.line or 1, node.column or 1, node.end_column)
        meta = node.meta
        if meta.empty:
            return ast.Span(self.path, 1, 1)
        return ast.Span(self.path, meta.line, meta.column, meta.end_column if meta.end_line == meta.line else None)

    def name(self, token: Token) -> ast.Name:
        return ast.Name(str(token), self.span(token))

    def names(self, tree: Tree) -> tuple[ast.Name, ...]:
        return tuple(self.name(t) for t in tree.children)

    def statement(self, tree: Tree) -> ast.Statement:
        span, kids = self.span(tree), tree.children
        match tree.data:
            case "face_decl":
                return ast.FaceDecl(self.name(kids[0]), span)
            case "default_decl":
                return ast.DefaultDecl(self.name(kids[0]), span)
            case "group_decl":
                return ast.GroupDecl(self.name(kids[0]), self.names(kids[1]), span)
            case "fakes_decl":
                return ast.FakesDecl(self.name(kids[0]), span)
            case "reveal_stmt" | "hide_stmt":
                effect = ast.Effect.REVEAL if tree.data == "reveal_stmt" else ast.Effect.HIDE
                condition = self.condition(kids[1].children[0], 1) if len(kids) > 1 else None
                return ast.Rule(effect, self.names(kids[0]), condition, span)
        raise AssertionError(f"unhandled statement {tree.data}")

    def condition(self, tree: Tree, depth: int) -> ast.Condition:
        span = self.span(tree)
        if depth > MAX_NESTING:
            raise RuleError([_diag(f"condition is nested more than {MAX_NESTING} levels deep", self.path,
                                   span.line, span.column, text=self.text)])
        kids = tree.children
        match tree.data:
            case "uploader_in" | "uploader_not_in":
                return ast.UploaderIn(self.names(kids[0]), tree.data == "uploader_not_in", span)
            case "album_eq" | "album_ne":
                return ast.AlbumIs(_unquote(kids[0]), tree.data == "album_ne", span)
            case "not_":
                return ast.Not(self.condition(kids[0], depth + 1), span)
            case "and_" | "or_" if len(kids) == 1:  # the grammar aliases single operands too
                return self.condition(kids[0], depth)
            case "and_":
                return ast.And(tuple(self.condition(k, depth + 1) for k in kids), span)
            case "or_":
                return ast.Or(tuple(self.condition(k, depth + 1) for k in kids), span)
        raise AssertionError(f"unhandled condition {tree.data}")


def _unquote(token: Token) -> str:
    body = str(token)[1:-1]
    out, chars = [], iter(body)
    for ch in chars:
        out.append(next(chars, "") if ch == "\\" else ch)
    return "".join(out)


def strip_comment(line: str) -> str:
    """The line without its comment."""
    comment_at = _comment_start(line)
    return line if comment_at is None else line[:comment_at]


def _comment_of(line: str) -> str | None:
    """The comment on a line, without the `#` and outer spaces."""
    start = _comment_start(line)
    return None if start is None else line[start + 1 :].strip()


def _comment_start(line: str) -> int | None:
    """Index of the `#` that starts the line's comment (outside a string), if any."""
    in_string = escaped = False
    for i, ch in enumerate(line):
        if in_string:
            escaped = ch == "\\" and not escaped
            if ch == '"' and not escaped:
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == "#":
            return i
    return None


def _attach_comments(
    statements: tuple[ast.Statement, ...], text: str
) -> tuple[tuple[ast.Statement, ...], tuple[str, ...]]:
    """Attach comment lines to the statement below them and end-of-line comments to their statement;
    comments after the last statement are returned separately."""
    lines = text.splitlines()
    by_line = {s.span.line: s for s in statements}
    out: list[ast.Statement] = []
    pending: list[str] = []
    for number, line in enumerate(lines, start=1):
        comment = _comment_of(line)
        statement = by_line.get(number)
        if statement is None:
            if comment is not None:
                pending.append(comment)
            continue
        out.append(replace(statement, comments=ast.Comments(tuple(pending), comment)))
        pending = []
    return tuple(out), tuple(pending)
