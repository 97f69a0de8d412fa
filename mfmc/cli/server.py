"""`mfmc serve` (the platform server: HTTP API + web page) and `mfmc worker` (fake jobs from Redis).

Settings are read here once, from options and their environment variables, and handed to `mfmc.server`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mfmc.cli.platform import DEFAULT_DIR, DataDirOpt, DbOpt

RedisOpt = Annotated[str | None, typer.Option(
    "--redis", envvar="MFMC_REDIS_URL", show_envvar=True,
    help="Redis URL for fake jobs (e.g. redis://127.0.0.1:6379/0); default: fakes made in the server process.")]
BackendOpt = Annotated[str, typer.Option(
    "--backend", help="Face backend for fakes: `vision` (the real models) or `grid` (cheap, for tests/benchmarks).")]


def serve_command(
    data_dir: DataDirOpt = DEFAULT_DIR,
    db: DbOpt = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8750,
    redis: RedisOpt = None,
    backend: BackendOpt = "vision",
    audience: Annotated[str | None, typer.Option(
        "--audience", help="Name of this deployment inside login signatures (default: http://HOST:PORT).")] = None,
    max_body_mb: Annotated[int, typer.Option("--max-body-mb", help="Largest request body accepted.")] = 32,
    token_ttl: Annotated[int, typer.Option("--token-ttl", help="Lifetime of a login, in seconds.")] = 900,
    workers: Annotated[int, typer.Option("--workers", help="Server processes (uvicorn workers).")] = 1,
    init: Annotated[bool, typer.Option("--init", help="Create the data dir and database if missing.")] = False,
    queue: Annotated[str, typer.Option("--queue", help="Redis queue name for fake jobs.")] = "mfmc-fakes",
) -> None:
    """Run the platform server: the HTTP API (OpenAPI at /docs) and the web page, over the data dir."""
    import uvicorn

    from mfmc.server.settings import ServerSettings, open_server

    settings = ServerSettings(data_dir=Path(data_dir), db_url=db, redis_url=redis, backend=backend,
                              audience=audience or f"http://{host}:{port}", token_ttl_s=token_ttl,
                              max_body_mb=max_body_mb, create=init, queue=queue)
    open_server(settings).close()  # fail before listening: data dir, database, Redis (one clear line each)
    print(f"mfmc serve: http://{host}:{port}/docs (data dir `{data_dir}`, "
          f"{'postgresql' if db else 'sqlite'}, fakes {'on ' + redis if redis else 'in-process'})", flush=True)
    if workers > 1:
        import os

        os.environ["MFMC_SERVE_SETTINGS"] = settings.to_json()  # handed to the worker processes
        uvicorn.run("mfmc.server.asgi:app", host=host, port=port, workers=workers, log_level="warning",
                    access_log=False)
    else:
        from mfmc.server.app import create_app

        uvicorn.run(create_app(open_server(settings), audience=settings.audience, token_ttl_s=token_ttl,
                               max_body=max_body_mb * 1024 * 1024),
                    host=host, port=port, log_level="warning", access_log=False)


def worker_command(
    data_dir: DataDirOpt = DEFAULT_DIR,
    db: DbOpt = None,
    redis: Annotated[str, typer.Option("--redis", envvar="MFMC_REDIS_URL", show_envvar=True,
                                       help="Redis URL the server enqueues fake jobs on.")]
    = "redis://127.0.0.1:6379/0",
    backend: BackendOpt = "vision",
    burst: Annotated[bool, typer.Option("--burst", help="Exit when the queue is empty.")] = False,
    name: Annotated[str | None, typer.Option("--name", help="Worker name (default: host and pid).")] = None,
    queue: Annotated[str, typer.Option("--queue", help="Queue name (as `mfmc serve --queue`).")] = "mfmc-fakes",
) -> None:
    """Make fakes for the server: take jobs from Redis, store each fake in the data dir's store (idempotent)."""
    from mfmc.jobs.worker import run_worker
    from mfmc.server.fakes import FakeMaker
    from mfmc.server.settings import ServerSettings, lazy_backend, open_store

    store = open_store(ServerSettings(data_dir=Path(data_dir), db_url=db))
    run_worker(FakeMaker(store, lazy_backend(backend)), redis, burst=burst, name=name, queue=queue)
