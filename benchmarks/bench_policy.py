"""Decision-engine speed: compile once, decide many.

A 10 000-user graph, a photo with 20 faces whose owners have realistic rule files, 10 000 viewers.
Reports batched decisions/s, the scalar `check` path, the reference evaluator from the tests (the baseline,
same run), and the `audience` query time for one face.

Then `analyze` (issue 16: ever / always / dead over every photo context) for one owner at a time, cold (fresh
engine) and warm, against brute force over the context space in the same run — every graph user as uploader,
one stranger, none, the owner, times every album literal, another album, none, each decided for all viewers by the
engine's batched reveal vector — checking that both give the same `ever` and `always`; and `diff` for one edit.

Last, `mfmc rules check rules/` as a fresh process (issue 17: <= 0.3 s), interleaved with `python -c pass` (the
baseline of the same run) and with the same check after `import numpy` (what it cost when the rules CLI loaded
the engine, and numpy with it, at import).

    python benchmarks/bench_policy.py [--users 10000] [--viewers 10000] [--faces 20] [--seed 0] [--brute 2]
                                      [--startup 20] [--startup-only]
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mfmc.policy import Context, Engine, Graph, PolicySet, analyze, diff, parse_rules
from mfmc.policy.engine import audience_of
from tests.policy import reference

LEVELS = ["public", "friends", "friends_of_friends", "followers", "nobody"]


def make_graph(rng: random.Random, n: int) -> tuple[Graph, dict]:
    users = [f"user{i}" for i in range(n)]
    friends = set()
    for i in range(n):  # ~20 friends each, clustered in neighbourhoods of the id space
        for _ in range(10):
            j = (i + rng.randint(1, 400)) % n if rng.random() < 0.8 else rng.randrange(n)
            if i != j:
                friends.add((users[min(i, j)], users[max(i, j)]))
    follows = {(users[rng.randrange(n)], users[rng.randrange(n)]) for _ in range(n * 5)}
    follows = {p for p in follows if p[0] != p[1]}
    graph = Graph(users, sorted(friends), sorted(follows))
    return graph, {"users": set(users), "friends": sorted(friends), "follows": sorted(follows)}


def make_rules(rng: random.Random, owner: str, users: list[str]) -> str:
    others = [u for u in users if u != owner]
    lines = [f"face {owner}", f"default {rng.choice(LEVELS)}"]
    lines.append(f"group family = {', '.join(rng.sample(others, rng.randint(3, 12)))}")
    lines.append(f"group work = {', '.join(rng.sample(others, rng.randint(10, 50)))}")
    lines.append("reveal to family")
    lines.append(f"reveal to {', '.join(rng.sample(others, 3))}")
    lines.append(f"hide from {', '.join(rng.sample(others, 2))}")
    lines.append("hide from everyone when uploader not in friends")
    lines.append('reveal to work when album == "office" or album == "offsite"')
    lines.append(f'reveal to friends_of_friends when album == "wedding" and not uploader in {rng.choice(others)}')
    if rng.random() < 0.5:
        lines.append("hide from followers when not (uploader in family)")
    return "\n".join(lines) + "\n"


def wide_rules(owner: str, users: list[str]) -> str:
    """Many distinct uploader tests and album literals: a worst case for the number of context classes."""
    rng = random.Random(1)
    others = [u for u in users if u != owner]
    lines = [f"face {owner}", "default friends_of_friends", f"group big = {', '.join(others[:3000])}"]
    for k in range(12):
        lines.append(f"hide from friends when uploader in {', '.join(rng.sample(others, 50))}")
        lines.append(f'reveal to everyone when album == "a{k}" and uploader not in big')
    lines.append("reveal to friends_of_friends when uploader in friends_of_friends")
    return "\n".join(lines) + "\n"


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--viewers", type=int, default=10_000)
    ap.add_argument("--faces", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--brute", type=int, default=2, help="owners checked by brute force over contexts (slow)")
    ap.add_argument("--startup", type=int, default=20, help="fresh processes per command for `rules check`")
    ap.add_argument("--startup-only", action="store_true", help="only time `mfmc rules check` start-up")
    args = ap.parse_args()
    if args.startup_only:
        bench_check_startup(args.startup)
        return
    rng = random.Random(args.seed)

    t0 = time.perf_counter()
    graph, graph_dict = make_graph(rng, args.users)
    owners = rng.sample(graph.users, args.faces)
    texts = {o: make_rules(rng, o, list(graph.users)) for o in owners}
    t1 = time.perf_counter()
    policy = PolicySet.from_sources([(t, f"{o}.mfmc") for o, t in texts.items()], graph=graph)
    engine = Engine(policy, graph)
    t2 = time.perf_counter()
    viewers = [*rng.sample(graph.users, min(args.viewers, args.users - 1)), "stranger"]
    context = Context(uploader=rng.choice(graph.users), album="wedding")
    print(f"graph {len(graph)} users, {len(graph_dict['friends'])} friendships, {len(graph_dict['follows'])} follows "
          f"(built in {t1 - t0:.1f} s); {len(owners)} rule files compiled in {(t2 - t1) * 1e3:.1f} ms")

    indices = engine.viewer_indices(viewers)
    engine.decide_many(owners, indices, context)  # warm the relation masks, as a long-lived engine would be
    batched = best_of(lambda: engine.decide_many(owners, indices, context), 5)
    n_batched = len(owners) * len(viewers)
    cold = best_of(lambda: Engine(policy, graph).decide_many(owners, viewers, context), 3)

    sample = [(rng.choice(owners), rng.choice(viewers)) for _ in range(20_000)]
    scalar = best_of(lambda: [engine.check(v, o, context) for o, v in sample], 3)

    files = {o: parse_rules(t, f"{o}.mfmc") for o, t in texts.items()}
    ref_sample = sample[:200]
    ref = best_of(lambda: [reference.decide(files, graph_dict, v, o, context.uploader, context.album)
                           for o, v in ref_sample], 1)
    mismatches = sum(engine.check(v, o, context).reveal
                     != reference.decide(files, graph_dict, v, o, context.uploader, context.album)
                     for o, v in ref_sample)

    audience_times = []
    for owner in owners:
        start = time.perf_counter()
        Engine(policy, graph).audience(owner, context)
        audience_times.append(time.perf_counter() - start)
    warm_audience = best_of(lambda: engine.audience(owners[0], context), 20)

    rate = n_batched / batched
    ref_rate = len(ref_sample) / ref
    print(f"batched  decide_many: {rate:>14,.0f} decisions/s ({len(owners)} faces x {len(viewers)} viewers "
          f"in {batched * 1e3:.2f} ms)")
    print(f"cold     decide_many: {n_batched / cold:>14,.0f} decisions/s (fresh engine, names → indices included)")
    print(f"scalar   check():     {len(sample) / scalar:>14,.0f} decisions/s (with reasons)")
    print(f"reference evaluator:  {ref_rate:>14,.0f} decisions/s ({mismatches} mismatches on {len(ref_sample)})")
    print(f"ratio batched / reference: {rate / ref_rate:,.0f}x; scalar / reference: "
          f"{len(sample) / scalar / ref_rate:,.0f}x")
    print(f"audience (one face, {len(graph)} users): cold median {statistics.median(audience_times) * 1e3:.2f} ms, "
          f"max {max(audience_times) * 1e3:.2f} ms; warm {warm_audience * 1e3:.2f} ms")
    bench_analysis(policy, graph, owners, texts, args.brute)
    if args.startup:
        bench_check_startup(args.startup)


def bench_check_startup(runs: int) -> None:
    root = Path(__file__).resolve().parents[1]
    check = "import sys; from mfmc.cli.main import main; sys.exit(main(['rules', 'check', 'rules/']))"
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "mfmc rules check rules/": [sys.executable, "-c", check],
        "the same after `import numpy`": [sys.executable, "-c", "import numpy; " + check],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):  # interleaved, so load changes hit every command alike
        for name, command in commands.items():
            start = time.perf_counter()
            subprocess.run(command, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            times[name].append(time.perf_counter() - start)
    loaded = "numpy" in subprocess.run([sys.executable, "-c", check.replace("sys.exit(main", "main").replace(
        "]))", "]); print(*sys.modules)")], cwd=root, capture_output=True, text=True).stdout.split()
    print(f"cold `rules check` ({runs} fresh processes each, interleaved; numpy imported by the check: {loaded}):")
    for name, values in times.items():
        print(f"  {name:<32} min {min(values) * 1e3:6.0f} ms  median {statistics.median(values) * 1e3:6.0f} ms")


def brute_force(engine: Engine, owner: str) -> tuple[object, object, int]:
    """ever / always by deciding every context of the space for all viewers (no equivalence classes)."""
    owner_policy = engine.policy.get(owner)
    albums = sorted(owner_policy.album_literals()) if owner_policy else []
    ever = always = None
    count = 0
    for uploader in [*engine.graph.users, "stranger", None, owner]:
        for album in [*albums, "another album", None]:
            vector = engine.reveal_vector(owner, Context(uploader=uploader, album=album))
            ever = vector.copy() if ever is None else ever | vector
            always = vector.copy() if always is None else always & vector
            count += 1
    users = engine.graph.users
    return audience_of(ever, users, owner), audience_of(always, users, owner), count


def bench_analysis(policy: PolicySet, graph: Graph, owners: list[str], texts: dict[str, str], brute: int) -> None:
    cold, classes = [], []
    for owner in owners:
        start = time.perf_counter()
        result = analyze(policy, graph, owner)  # fresh engine inside: relation masks built here
        cold.append(time.perf_counter() - start)
        classes.append(len(result.contexts))
    engine = Engine(policy, graph)
    warm = best_of(lambda: analyze(policy, graph, owners[0], engine=engine), 10)
    print(f"analyze (one owner, {len(graph)} users, ever/always/dead/redundant): cold median "
          f"{statistics.median(cold) * 1e3:.2f} ms, max {max(cold) * 1e3:.2f} ms over {len(owners)} owners; "
          f"warm {warm * 1e3:.2f} ms; {min(classes)}-{max(classes)} context classes")
    for owner in owners[:brute]:
        start = time.perf_counter()
        ever, always, count = brute_force(Engine(policy, graph), owner)
        slow = time.perf_counter() - start
        start = time.perf_counter()
        result = analyze(policy, graph, owner)
        fast = time.perf_counter() - start
        same = result.ever == ever and result.always == always
        print(f"  {owner}: brute force over {count:,} contexts {slow * 1e3:,.0f} ms vs analyze {fast * 1e3:.2f} ms "
              f"({slow / fast:,.0f}x); same ever/always: {same}")
        if not same:
            raise SystemExit("analyze disagrees with brute force")
    wide = wide_rules(owners[0], list(graph.users))
    wide_policy = PolicySet.from_sources([(wide, "wide.mfmc")], graph=graph)
    start = time.perf_counter()
    result = analyze(wide_policy, graph, owners[0])
    took = time.perf_counter() - start
    print(f"analyze, adversarial file (25 uploader tests, 12 albums: {len(result.contexts)} context classes): "
          f"{took * 1e3:.1f} ms cold")
    edited = dict(texts)
    owner = owners[0]
    edited[owner] = texts[owner].replace("hide from everyone when uploader not in friends\n", "")
    new = PolicySet.from_sources([(t, f"{o}.mfmc") for o, t in edited.items()], graph=graph)
    start = time.perf_counter()
    (change,) = diff(policy, new, graph, faces=[owner])
    took = time.perf_counter() - start
    print(f"diff (one owner, one statement removed): {took * 1e3:.2f} ms; gains {change.gained} graph users"
          f"{' and strangers' if change.strangers_gain else ''}, loses {change.lost}")


if __name__ == "__main__":
    main()
