"""The real boundary: the server imports no client code, and after full scenarios over HTTP its database, files
and logs hold no private key, passphrase or plaintext embedding (SQLite and PostgreSQL)."""

from __future__ import annotations

import ast
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from mfmc.crypto.scan import find_secrets, scan_paths
from mfmc.service.testing import grid_photo
from mfmc.store import Store
from tests.server.conftest import befriend, deployment, passphrase

ROOT = Path(__file__).resolve().parents[2]
CLIENT_CODE = ("mfmc.client", "mfmc.crypto.keyring", "mfmc.crypto.scan", "mfmc.service.platform", "mfmc.cli")
SERVER_PACKAGES = [ROOT / "mfmc" / "server", ROOT / "mfmc" / "jobs"]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def test_server_modules_import_no_client_code() -> None:
    files = [f for pkg in SERVER_PACKAGES for f in pkg.rglob("*.py")]
    assert len(files) >= 8
    for path in files:
        bad = sorted(n for n in _imports(path) if n.startswith(CLIENT_CODE))
        assert bad == [], f"{path.relative_to(ROOT)} imports client code: {bad}"
    # and at run time: loading every server module (and what they load) brings in no client module
    probe = ("import sys, importlib, pkgutil, mfmc.server, mfmc.jobs\n"
             "for pkg in (mfmc.server, mfmc.jobs):\n"
             "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
             "        if m.name != 'mfmc.server.asgi':\n"
             "            importlib.import_module(m.name)\n"
             f"print(sorted(m for m in sys.modules if m.startswith({CLIENT_CODE!r})))\n")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def _table_bytes(store: Store) -> bytes:
    out = []
    with store.engine.connect() as conn:
        for table in ("users", "friendships", "follows", "rule_files", "photos", "faces", "rendered_fakes",
                      "audit_log", "shared_embeddings", "notices", "meta"):
            for row in conn.execute(text(f"select * from {table}")):
                out.extend(bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode() for v in row)
    return b"\n".join(out)


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_no_secret_reaches_the_server_after_full_scenarios(tmp_path: Path, db: str) -> None:
    log_file = tmp_path / "server.log"
    handler = logging.FileHandler(log_file)
    handler.setLevel(logging.DEBUG)
    loggers = [logging.getLogger(n) for n in ("mfmc", "uvicorn", "uvicorn.error", "fastapi", "httpx")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    secrets: list[object] = []
    try:
        with deployment(tmp_path / "d", db=db) as dep:
            names = ["alice", "bob", "carol", "dan"]
            clients = {n: dep.client(n) for n in names}
            for c in clients.values():
                c.create()
                secrets.append(c.keyring.keys)
            for n, c in clients.items():
                c.set_rules(f"face {n}\ndefault {'nobody' if n == 'dan' else 'friends'}\n", f"{n}.mfmc")
            for k, c in enumerate(clients.values()):
                c.enroll([grid_photo([k], seed=100 + k)])
            alice, bob, carol, dan = clients.values()
            befriend(alice, bob)
            befriend(bob, carol)
            befriend(alice, dan)
            carol.follow("alice")
            alice.approve_follower("carol")
            image = grid_photo([0, 1, 2, 3, None], seed=21)
            for model in ("rules", "explicit", "proxy"):
                up = alice.upload(image, model=model, reveal=[0] if model == "proxy" else ())
                for c in clients.values():
                    c.render(up.photo_id)
            alice.tag(2, 4, "carol")
            carol.consent(2, 4)
            bob.consent(2, 1)
            alice.untag(2, 1)
            alice.rotate_keys()
            secrets.append(alice.keyring.keys)  # the new key too
            bob.sync()
            alice.unfriend("bob")
            bob.sync()
            for c in clients.values():
                own = c.keyring.own
                if own is not None:
                    secrets.append(own)
                secrets.extend(c.keyring.known().values())
            secrets.extend(passphrase(n) for n in names)
            assert len(secrets) >= 12
            assert find_secrets(_table_bytes(dep.server.store), secrets) == []
            assert scan_paths([dep.data_dir / "server"], secrets) == []
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)
        handler.close()
    assert log_file.stat().st_size > 0  # requests and server messages were logged; none of it is secret
    assert scan_paths([log_file], secrets) == []
