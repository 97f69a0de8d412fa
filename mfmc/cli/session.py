"""Settings of the platform commands, read once here at the edge: passphrases, the server URL, the data dir.

- passphrases: `MFMC_PASSPHRASE_<USER>`, then `MFMC_PASSPHRASE`, else an interactive prompt (never logged);
- `--server URL` / `MFMC_SERVER`: talk to a running `mfmc serve`; without it the commands run an embedded server
  in this process over the data dir (`--data-dir` / `MFMC_DATA_DIR`, `--db` / `MFMC_DB_URL`);
- `--redis URL` / `MFMC_REDIS_URL` (embedded server only): fake jobs go to `mfmc worker`s.
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from mfmc.crypto.errors import MissingKeyError

if TYPE_CHECKING:
    from mfmc.service.platform import Platform


def env_passphrase(name: str) -> str:
    """`MFMC_PASSPHRASE_<NAME>` or `MFMC_PASSPHRASE`, else an interactive prompt; never logged."""
    key = "MFMC_PASSPHRASE_" + "".join(c if c.isalnum() else "_" for c in name.upper())
    for var in (key, "MFMC_PASSPHRASE"):
        value = os.environ.get(var)
        if value:
            return value
    if sys.stdin is not None and sys.stdin.isatty():
        return getpass.getpass(f"passphrase for `{name}`: ")
    raise MissingKeyError(f"no passphrase for the keyring of `{name}`",
                          help=f"set {key} or MFMC_PASSPHRASE, or run in a terminal")


def open_session(data_dir: Path, db: str | None, server: str | None = None, *, create: bool = False) -> Platform:
    """The platform for a command: the users' clients in `data_dir`, the server embedded or at `server`."""
    from mfmc.service.platform import Platform

    return Platform(data_dir, db_url=db, create=create, passphrase=env_passphrase, server_url=server or None,
                    redis_url=os.environ.get("MFMC_REDIS_URL") or None)
