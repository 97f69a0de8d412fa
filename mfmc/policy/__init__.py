"""The `.mfmc` rule language and decision engine.

    graph = Graph.load("examples/graph.toml")
    policy = load_policy(["rules/"], graph=graph)
    engine = Engine(policy, graph)
    engine.check(viewer="bob", owner="alice", context=Context(uploader="carol"))   # Decision
    engine.audience("alice")                                                       # Everyone | Only | Nobody
"""

from mfmc.policy.ast import RuleFile
from mfmc.policy.compiler import compile_file, compile_sources, load_policy, load_sources, rule_paths
from mfmc.policy.conditions import Context
from mfmc.policy.diagnostics import Diagnostic, Severity
from mfmc.policy.engine import Audience, Decision, Engine, Everyone, Nobody, Only
from mfmc.policy.formatter import format_rules
from mfmc.policy.graph import Graph
from mfmc.policy.model import OwnerPolicy, PolicySet
from mfmc.policy.parser import parse_rules, read_rules_file
from mfmc.policy.validator import validate

__all__ = [
    "Audience",
    "Context",
    "Decision",
    "Diagnostic",
    "Engine",
    "Everyone",
    "Graph",
    "Nobody",
    "Only",
    "OwnerPolicy",
    "PolicySet",
    "RuleFile",
    "Severity",
    "compile_file",
    "compile_sources",
    "format_rules",
    "load_policy",
    "load_sources",
    "parse_rules",
    "read_rules_file",
    "rule_paths",
    "validate",
]
