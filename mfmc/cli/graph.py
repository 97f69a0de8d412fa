"""`mfmc graph import FILE`: bring a social graph file (the one `mfmc rules` reads) onto the platform."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mfmc.cli.platform import DEFAULT_DIR, DataDirOpt, DbOpt, ServerOpt, open_platform
from mfmc.cli.text import plural

graph_app = typer.Typer(help="Bring a social graph file onto the platform.", no_args_is_help=True)


@graph_app.command("import")
def import_graph(
    file: Annotated[Path, typer.Argument(help="Social graph file (TOML or JSON), as read by `mfmc rules`.",
                                         show_default=False)],
    data_dir: DataDirOpt = DEFAULT_DIR,
    db: DbOpt = None,
    server: ServerOpt = None,
) -> None:
    """Add the file's users, friendships and follows to the platform (nothing is removed; safe to run again).

    New users get a client keyring sealed with their passphrase (MFMC_PASSPHRASE_<USER> or MFMC_PASSPHRASE).
    """
    from mfmc.policy import Graph

    graph = Graph.load(file)  # a malformed file is refused before anything is written
    with open_platform(data_dir, db, server) as p:
        users = sum(bool(p.add_user(name)) for name in graph.users)
        friends = sum(bool(p.friend(a, b)) for a, b in graph.friend_pairs())
        follows = sum(bool(p.follow(a, b)) for a, b in graph.follow_pairs())
    print(f"imported {file}: {plural(len(graph.users), 'user')} ({users} new), "
          f"{plural(len(graph.friend_pairs()), 'friendship')} ({friends} new), "
          f"{plural(len(graph.follow_pairs()), 'follow')} ({follows} new)")
