"""Parser and validator: every error is positioned, Cedar-style, with a caret; warnings for odd rules."""

import pytest

from mfmc.errors import RuleError
from mfmc.policy import Graph, PolicySet, parse_rules, read_rules_file, validate
from mfmc.policy.ast import AlbumIs, And, Name, Not, Or, Rule, UploaderIn

GRAPH = Graph(["alice", "bob", "carol", "dan"], [("alice", "bob")])


def errors_of(text, graph=GRAPH):
    with pytest.raises(RuleError) as info:
        PolicySet.from_sources([(text, "t.mfmc")], graph=graph)
    return info.value


def warnings_of(text):
    return [w.message for w in PolicySet.from_sources([(text, "t.mfmc")], graph=GRAPH).warnings]


def test_precedence_not_binds_tighter_than_and_than_or():
    rule = parse_rules('face a\nreveal to b when not album == "x" and uploader in c or album != "y"\n').statements[1]
    assert isinstance(rule, Rule)
    assert rule.condition == Or((And((Not(AlbumIs("x")), UploaderIn((Name("c"),)))), AlbumIs("y", True)))


@pytest.mark.parametrize(
    ("text", "message", "where", "help_part"),
    [
        ("revael to bob\n", "unknown keyword `revael`", "t.mfmc:1:1", "did you mean `reveal`?"),
        ("face alice\nreveal bob\n", "unexpected `bob`", "t.mfmc:2:8", "expected `to`"),
        ("face alice\nreveal to\n", "unexpected end of line", "t.mfmc:2:10", "expected a name"),
        ('face alice\nreveal to bob when album == "x\n', "unterminated string", "t.mfmc:2:29", None),
        ("face alice\nreveal to bob when (album == \"x\"\n", "unexpected end of line", "t.mfmc:2:33", "`)`"),
        ("face alice\n$\n", "unexpected character `$`", "t.mfmc:2:1", None),
    ],
)
def test_syntax_errors_are_positioned(text, message, where, help_part):
    err = errors_of(text)
    rendered = err.render()
    first = rendered.splitlines()[0]
    assert first == f"{where}: error: {message}"
    assert "^" in rendered.splitlines()[2]
    if help_part:
        assert help_part in rendered


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "missing `face` declaration"),
        ("# only a comment\n", "missing `face` declaration"),
        ("face alice\nface bob\n", "`face` declared more than once"),
        ("face alice\ndefault friends\ndefault public\n", "`default` declared more than once"),
        ("face alice\ndefault frends\n", "unknown default level `frends`"),
        ("face alice\nfakes per_viewr\n", "unknown fakes mode `per_viewr`"),
        ("face alice\ngroup g = bob\ngroup g = carol\n", "group `g` is already defined"),
        ("face alice\nreveal to fam\ngroup fam = bob\n", "group `fam` is used before its definition"),
        ("face alice\nhide from alice\n", "a statement names the owner `alice`"),
        ("face alice\nreveal to nobody\n", "`nobody` is only valid in `default`"),
        ("face alice\ngroup friends = bob\n", "`friends` cannot be a group name"),
        ("face alice\ngroup family = bob\nreveal to famly\n", "unknown group or user `famly`"),
    ],
)
def test_validation_errors(text, message):
    err = errors_of(text)
    assert err.exit_code == 2
    assert message in [d.message for d in err.diagnostics if d.is_error]


def test_all_errors_of_all_files_are_reported_together():
    with pytest.raises(RuleError) as info:
        PolicySet.from_sources([("face a\ndefault x\n", "a.mfmc"), ("face b\nhide from b\n", "b.mfmc")])
    assert [d.span.path for d in info.value.diagnostics] == ["a.mfmc", "b.mfmc"]


def test_two_files_for_one_owner_is_an_error():
    with pytest.raises(RuleError, match="rules for `alice` are defined twice"):
        PolicySet.from_sources([("face alice\n", "a.mfmc"), ("face alice\n", "b.mfmc")])


def test_warnings():
    assert warnings_of("face alice\nreveal to bobb\n") == ["unknown user `bobb`"]
    assert warnings_of("face alice\nreveal to bob\nhide from bob\n") == [
        "`reveal to bob` can never apply: `hide from bob` on line 3 always wins"]
    assert warnings_of('face alice\nreveal to bob when album == "a" and album == "b"\n') == [
        "this statement can never apply: its condition is never true"]
    assert warnings_of("face alice\nreveal to bob when uploader in friends and uploader not in friends\n") == [
        "this statement can never apply: its condition is never true"]
    assert warnings_of("face alice\nreveal to carol\nreveal to carol\n") == ["duplicate of the statement on line 2"]
    assert warnings_of("face alice\ndefault friends\nreveal to bob when album == \"a\"\n") == []


def test_unknown_user_warning_has_did_you_mean():
    policy = PolicySet.from_sources([("face alice\nreveal to bobb\n", "t.mfmc")], graph=GRAPH)
    assert policy.warnings[0].help == "did you mean `bob`?"


# ---- bad input: a clear error or a correct answer, never a crash or a hang -----------------------------------


def test_binary_file(tmp_path):
    p = tmp_path / "x.mfmc"
    p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    with pytest.raises(RuleError, match="is not a text file"):
        read_rules_file(p)


def test_non_utf8_file_reports_line_and_column(tmp_path):
    p = tmp_path / "x.mfmc"
    p.write_bytes(b"face alice\nreveal to b\xe9b\n")
    with pytest.raises(RuleError) as info:
        read_rules_file(p)
    assert info.value.render().startswith(f"{p}:2:12: error: invalid UTF-8 byte")


def test_deeply_nested_condition_is_an_error_not_a_crash():
    deep = "face alice\nreveal to bob when " + "(" * 5000 + 'album == "x"' + ")" * 5000 + "\n"
    with pytest.raises(RuleError, match="nested"):
        PolicySet.from_sources([(deep, "deep.mfmc")])
    nots = "face alice\nreveal to bob when " + "not " * 3000 + 'album == "x"\n'
    with pytest.raises(RuleError, match="nested"):
        PolicySet.from_sources([(nots, "nots.mfmc")])


@pytest.mark.slow  # a scale check: 10,000 statements parsed, compiled and decided
def test_ten_thousand_statements():
    users = [f"user{i}" for i in range(200)]
    graph = Graph(["alice", *users])
    lines = ["face alice", "default nobody"]
    lines += [f"{'reveal to' if i % 3 else 'hide from'} {users[i % 200]} when album == \"a{i}\"" for i in range(10_000)]
    policy = PolicySet.from_sources([("\n".join(lines) + "\n", "big.mfmc")], graph=graph)
    assert len(policy.get("alice").rules) == 10_000


def test_validate_without_graph_skips_name_checks():
    found = validate(parse_rules("face alice\nreveal to whoever\n"))
    assert found == []


def test_windows_line_endings_and_bom():
    rule_file = parse_rules("\ufeffface alice\r\nreveal to bob\r\n")
    assert len(rule_file.statements) == 2
