"""`mfmc serve` as users run it: a process on 127.0.0.1 with OpenAPI docs; refused before listening when the data
dir is missing (one line, exit 1)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from mfmc.client.embedded import free_port

ROOT = Path(__file__).resolve().parents[2]


def _serve(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mfmc.cli.main", "serve", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.mark.slow  # starts `mfmc serve` as a process and waits for it to listen
def test_serve_answers_with_its_openapi_schema(tmp_path: Path) -> None:
    port = free_port()
    proc = _serve("--data-dir", str(tmp_path / "data"), "--init", "--backend", "grid", "--port", str(port))
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).json()["ok"]:
                    break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.2)
        assert httpx.get(f"http://127.0.0.1:{port}/docs").status_code == 200
        paths = httpx.get(f"http://127.0.0.1:{port}/openapi.json").json()["paths"]
        for path in ("/api/auth/challenge", "/api/photos", "/api/photos/{photo_id}/render.png", "/api/rules",
                     "/api/photos/{photo_id}/faces/{index}/consent"):
            assert path in paths
        assert (tmp_path / "data" / "server").is_dir()
    finally:
        proc.terminate()
        proc.wait(20)


def test_serve_refuses_a_missing_data_dir_before_listening(tmp_path: Path) -> None:
    proc = _serve("--data-dir", str(tmp_path / "nothing"), "--port", str(free_port()))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    lines = err.strip().splitlines()
    assert lines[0].startswith("error: no mfmc data dir at") and "Traceback" not in err
