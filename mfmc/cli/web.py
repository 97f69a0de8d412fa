"""`mfmc open --as alice`: a one-time sign-in link for the web page, made by the user's client.

The client unlocks the user's keyring (passphrase from `MFMC_PASSPHRASE_<USER>`, `MFMC_PASSPHRASE` or a prompt),
logs in to the server by key (signed challenge → token) and asks for a sign-in code; the link carries the code
in its fragment (`…/web/signin.html#code=…`), works once and for 60 s, and the page exchanges it for a session
cookie. The server never sees a key or passphrase. See docs/web.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mfmc.cli.platform import DEFAULT_DIR, DataDirOpt

DEFAULT_SERVER = "http://127.0.0.1:8750"  # `mfmc serve`'s default


def open_command(
    as_user: Annotated[str, typer.Option("--as", metavar="NAME",
                                         help="Who signs in (their client's key signs the login).")],
    server: Annotated[str, typer.Option("--server", envvar="MFMC_SERVER", show_envvar=True, metavar="URL",
                                        help="The mfmc server (`mfmc serve`).")] = DEFAULT_SERVER,
    browser: Annotated[bool, typer.Option("--browser/--no-browser",
                                          help="Also open the link in the default web browser.")] = False,
    data_dir: DataDirOpt = DEFAULT_DIR,
) -> None:
    """Print a one-time link that signs a user in to the web page (valid once, for 60 s): their client logs in
    by key, so the server never holds one."""
    from mfmc.cli.session import env_passphrase
    from mfmc.client.api import Api
    from mfmc.crypto.keyring import Keyring
    from mfmc.errors import UnknownUserError

    ring_dir = Path(data_dir) / "clients" / as_user
    if not ring_dir.is_dir():
        raise UnknownUserError(f"no client keyring for `{as_user}` in `{ring_dir.parent}`",
                               help="create the user first (`mfmc user add NAME`), or pass --data-dir")
    api = Api.connect(server)  # one clear line when nothing (or no mfmc server) answers
    try:
        keys = Keyring.open(ring_dir, env_passphrase(as_user)).keys
        got = api.call(keys, "POST", "/api/auth/signin").json()
    finally:
        api.close()
    url = server.rstrip("/") + str(got["path"])
    print(url)
    print(f"  signs in `{as_user}` once, within {got['expires_in']} s; keep it private like a password",
          flush=True)
    if browser:
        import webbrowser

        webbrowser.open(url)
