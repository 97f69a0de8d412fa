"""The client's HTTP connection to an mfmc server: login by key, JSON calls, errors mapped back to mfmc errors.

An error answer (`{"error": {"type", "message", "help", "exit_code"}}`) becomes the same `MfmcError` subclass
the server raised, so the CLI prints the same `error:` line and exits with the same code over HTTP as in
process. A server that cannot be reached gives one `ServerUnavailableError` line.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

import mfmc.crypto.errors as crypto_errors
import mfmc.errors as errors
from mfmc.crypto.auth import sign_challenge
from mfmc.crypto.keys import KeyPair
from mfmc.errors import MfmcError, ServerUnavailableError

Json = dict[str, Any]


def b64e(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64d(text: str | None) -> bytes:
    return base64.b64decode(text or "")


# the error classes an answer can name (`type`), by their names in mfmc.errors, then mfmc.crypto.errors
_ERRORS: dict[str, type[MfmcError]] = {
    name: cls for module in (crypto_errors, errors) for name, cls in vars(module).items()
    if isinstance(cls, type) and issubclass(cls, MfmcError)}


def _error_class(name: str) -> type[MfmcError]:
    return _ERRORS.get(name, MfmcError)


def raise_for_error(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        body = response.json()["error"]
        message, help_, code = str(body["message"]), body.get("help"), int(body.get("exit_code", 1))
        cls = _error_class(str(body.get("type", "")))
    except (ValueError, KeyError, TypeError):
        raise ServerUnavailableError(f"the server answered {response.status_code} without an mfmc error",
                                     help="is the URL an mfmc server? (`mfmc serve`)") from None
    try:
        err = cls(message, help=help_)
    except TypeError:  # an error class with another constructor (e.g. RuleError): keep message and code
        err = MfmcError(message, help=help_)
    if err.exit_code != code:
        err.exit_code = code
    raise err


class Api:
    """One server, many users' logins (tokens cached per user until shortly before they expire)."""

    def __init__(self, http: httpx.Client, *, label: str) -> None:
        self.http = http
        self.label = label  # the server's URL, for messages
        self._tokens: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    @classmethod
    def connect(cls, url: str, *, timeout_s: float = 120.0) -> Api:
        """An `Api` over HTTP at `url`; checks that it is an mfmc server (one clear line if not)."""
        http = httpx.Client(base_url=url.rstrip("/"), timeout=httpx.Timeout(timeout_s, connect=5.0))
        api = cls(http, label=url)
        api.health()
        return api

    def close(self) -> None:
        self.http.close()

    def _send(self, method: str, path: str, *, token: str | None = None, json: Json | None = None,
              params: Json | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else None
        try:
            response = self.http.request(method, path, json=json, params=params, headers=headers)
        except httpx.TransportError as err:
            raise ServerUnavailableError(f"cannot reach the mfmc server at `{self.label}`: {type(err).__name__}",
                                         help="start it with `mfmc serve`, or check --server / MFMC_SERVER") from None
        raise_for_error(response)
        return response

    def health(self) -> Json:
        response = self._send("GET", "/api/health")
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict) or body.get("ok") is not True:
            raise ServerUnavailableError(f"`{self.label}` is not an mfmc server")
        return body

    # ------------------------------------------------------------------ login
    def login(self, keys: KeyPair) -> str:
        """A bearer token for `keys.user` (cached); proves possession of the user's signing key."""
        with self._lock:
            cached = self._tokens.get(keys.user)
            if cached is not None and cached[1] > time.monotonic():
                return cached[0]
        got = self._send("POST", "/api/auth/challenge", json={"user": keys.user}).json()
        answer = sign_challenge(keys, got["challenge"], audience=got["audience"])
        out = self._send("POST", "/api/auth/token", json={
            "user": keys.user, "challenge": got["challenge"], "answer": b64e(answer)}).json()
        with self._lock:
            self._tokens[keys.user] = (out["token"], time.monotonic() + max(10, int(out["expires_in"]) - 30))
        return str(out["token"])

    def forget(self, user: str) -> None:
        with self._lock:
            self._tokens.pop(user, None)

    def call(self, keys: KeyPair | Callable[[], KeyPair], method: str, path: str, *, json: Json | None = None,
             params: Json | None = None) -> httpx.Response:
        """An authenticated request as the owner of `keys` (a callable unlocks the keyring only if needed)."""
        pair = keys() if callable(keys) else keys
        return self._send(method, path, token=self.login(pair), json=json, params=params)

    def public(self, method: str, path: str, *, json: Json | None = None) -> httpx.Response:
        return self._send(method, path, json=json)
