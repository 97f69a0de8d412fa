"""The `.mfmc` rule language and decision engine.

    graph = Graph.load("examples/graph.toml")
    policy = load_policy(["rules/"], graph=graph)
    engine = Engine(policy, graph)
    engine.check(viewer="bob", owner="alice", context=Context(uploader="carol"))   # Decision
    engine.audience("alice")                                                       # Everyone | Only | Nobody
    analyze(policy, graph, "alice")          # ever / always / dead statements over every photo context
    diff(old_policy, new_policy, graph)      # per owner: who gains and who loses the real face

Names are imported on first use (PEP 562), so `import mfmc.policy` stays cheap: checking rules never loads
numpy, and nothing loads the Lark parser until a file is parsed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mfmc.lazy import lazy_attributes

if TYPE_CHECKING:
    from mfmc.policy.analysis import Analysis, Change, DeadStatement, Witness, analyze, diff
    from mfmc.policy.ast import RuleFile
    from mfmc.policy.compiler import compile_file, compile_sources, load_policy, load_sources, rule_paths
    from mfmc.policy.conditions import Context
    from mfmc.policy.diagnostics import Diagnostic, Severity
    from mfmc.policy.engine import Audience, Decision, Engine, Everyone, Nobody, Only
    from mfmc.policy.formatter import format_rules
    from mfmc.policy.graph import Graph
    from mfmc.policy.model import DefaultAudience, FakesMode, OwnerPolicy, PolicySet, Relation
    from mfmc.policy.parser import parse_rules, read_rules_file
    from mfmc.policy.validator import validate

_HOMES = {
    "analysis": ("Analysis", "Change", "DeadStatement", "Witness", "analyze", "diff"),
    "ast": ("RuleFile",),
    "compiler": ("compile_file", "compile_sources", "load_policy", "load_sources", "rule_paths"),
    "conditions": ("Context",),
    "diagnostics": ("Diagnostic", "Severity"),
    "engine": ("Audience", "Decision", "Engine", "Everyone", "Nobody", "Only"),
    "formatter": ("format_rules",),
    "graph": ("Graph",),
    "model": ("DefaultAudience", "FakesMode", "OwnerPolicy", "PolicySet", "Relation"),
    "parser": ("parse_rules", "read_rules_file"),
    "validator": ("validate",),
}
_WHERE = {name: module for module, names in _HOMES.items() for name in names}

__all__ = [
    "Analysis",
    "Audience",
    "Change",
    "Context",
    "DeadStatement",
    "Decision",
    "DefaultAudience",
    "Diagnostic",
    "Engine",
    "Everyone",
    "FakesMode",
    "Graph",
    "Nobody",
    "Only",
    "OwnerPolicy",
    "PolicySet",
    "Relation",
    "RuleFile",
    "Severity",
    "Witness",
    "analyze",
    "compile_file",
    "compile_sources",
    "diff",
    "format_rules",
    "load_policy",
    "load_sources",
    "parse_rules",
    "read_rules_file",
    "rule_paths",
    "validate",
]
assert sorted(__all__) == sorted(_WHERE)


__getattr__ = lazy_attributes(__name__, _WHERE, globals())


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
