"""A server inside the client's process, for the CLI without `--server` (so `mfmc demo` needs nothing else).

`embedded_api(app)` gives an `Api` whose HTTP requests go to the FastAPI app in this process (httpx's ASGI
transport driven from a helper thread: real requests, status codes and JSON, no socket); `serve_in_thread(app)`
runs uvicorn on a free 127.0.0.1 port in a thread, for tests and benchmarks that want a real socket.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

import httpx

from mfmc.client.api import Api


class AsgiTransport(httpx.BaseTransport):
    """Synchronous httpx transport into an ASGI app running on an event loop in a helper thread (no socket)."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        from anyio.from_thread import start_blocking_portal

        self.app = app
        self._portal_cm = start_blocking_portal()
        self.portal = self._portal_cm.__enter__()
        self._async = httpx.ASGITransport(app=app, raise_app_exceptions=False,
                                          client=("127.0.0.1", 0))  # type: ignore[arg-type]

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()

        async def send() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
            req = httpx.Request(request.method, request.url, headers=request.headers, content=body)
            response = await self._async.handle_async_request(req)
            content = await response.aread()
            return response.status_code, response.headers.raw, content

        status, headers, content = self.portal.call(send)
        return httpx.Response(status, headers=headers, content=content, request=request)

    def close(self) -> None:
        self._portal_cm.__exit__(None, None, None)


def embedded_api(app: Callable[..., Awaitable[None]]) -> Api:
    """An `Api` whose requests go to `app` in this process."""
    http = httpx.Client(transport=AsgiTransport(app), base_url="http://mfmc.embedded")
    return Api(http, label="embedded server")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_in_thread(app: object, *, port: int | None = None, workers_log: str = "warning") -> Iterator[str]:
    """Run uvicorn on 127.0.0.1 in a thread; yields the base URL; stops it on exit."""
    import uvicorn

    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level=workers_log, access_log=False,  # type: ignore[arg-type]
                            lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="mfmc-embedded-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the embedded server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
