"""Login by key: a signed challenge buys a short-lived bearer token. Stateless, so many server processes share it.

1. `POST /api/auth/challenge {user}` -> an opaque challenge: `user.expiry.nonce.mac`, MAC'd with the server's
   token secret (so any server process can check it, and it cannot be made up or reused after 60 s).
2. The user's client signs it with their Ed25519 key (`mfmc.crypto.auth.sign_challenge`, bound to the server's
   audience string); `POST /api/auth/token {user, challenge, answer}` verifies the MAC, the expiry and the
   signature against the user's stored public key and returns a token `user.expiry.mac` (default 15 minutes).
3. Every endpoint that acts for a user reads `Authorization: Bearer <token>`; the user it names is the actor.

The token secret is random, kept in the store (`meta`), and is not a user secret: whoever holds the database
already holds everything a token gives access to. Rotating keys does not end existing tokens (they expire).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

from mfmc.crypto.auth import verify_challenge
from mfmc.crypto.errors import CryptoError
from mfmc.errors import AuthenticationError
from mfmc.server.core import Server
from mfmc.store import models as m

SECRET_KEY = "auth.token_secret"
CHALLENGE_TTL_S = 60


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def token_secret(server: Server) -> bytes:
    """The store's token secret, created once (the first server process to start writes it)."""
    with server.store.read() as tx:
        row = tx.session.get(m.Meta, SECRET_KEY)
        if row is not None:
            return bytes.fromhex(row.value)
    try:
        with server.store.tx() as tx:
            tx.session.add(m.Meta(key=SECRET_KEY, value=secrets.token_hex(32)))
    except Exception:
        pass
    with server.store.read() as tx:
        row = tx.session.get(m.Meta, SECRET_KEY)
        assert row is not None
        return bytes.fromhex(row.value)


class Authenticator:
    def __init__(self, server: Server, *, audience: str = "mfmc", token_ttl_s: int = 900) -> None:
        self.server = server
        self.audience = audience
        self.token_ttl_s = token_ttl_s
        self._secret = token_secret(server)

    def _mac(self, kind: str, *parts: str) -> str:
        msg = "\0".join((kind, *parts)).encode()
        return _b64(hmac.new(self._secret, msg, hashlib.sha256).digest()[:24])

    def challenge(self, user: str) -> str:
        self.server.public_keys(user)  # unknown user: 404
        expiry = str(int(time.time()) + CHALLENGE_TTL_S)
        nonce = _b64(secrets.token_bytes(16))
        return f"{user}.{expiry}.{nonce}.{self._mac('challenge', user, expiry, nonce)}"

    def token(self, user: str, challenge: str, answer: bytes) -> tuple[str, int]:
        parts = challenge.split(".")
        if len(parts) != 4 or parts[0] != user:
            raise AuthenticationError("malformed login challenge", help="ask for a new challenge")
        _, expiry, nonce, mac = parts
        if not hmac.compare_digest(mac, self._mac("challenge", user, expiry, nonce)):
            raise AuthenticationError("the login challenge was not issued by this server")
        if not expiry.isdigit() or int(expiry) < time.time():
            raise AuthenticationError("the login challenge expired", help="log in again")
        try:
            verify_challenge(answer, self.server.public_keys(user), challenge, audience=self.audience)
        except CryptoError as err:
            raise AuthenticationError(f"login refused: {err.message}", help=err.help) from None
        until = str(int(time.time()) + self.token_ttl_s)
        return f"{user}.{until}.{self._mac('token', user, until)}", self.token_ttl_s

    def issue(self, user: str, ttl_s: int) -> str:
        """A bearer token for `user` who proved their key another way: the web page's one-time sign-in code,
        which the user's client obtained with a key login (`mfmc.server.web.signin`)."""
        until = str(int(time.time()) + ttl_s)
        return f"{user}.{until}.{self._mac('token', user, until)}"

    def user_of(self, token: str) -> str:
        parts = token.split(".")
        if len(parts) != 3:
            raise AuthenticationError("malformed bearer token", help="log in again")
        user, until, mac = parts
        if not hmac.compare_digest(mac, self._mac("token", user, until)):
            raise AuthenticationError("invalid bearer token", help="log in again")
        if not until.isdigit() or int(until) < time.time():
            raise AuthenticationError("the login expired", help="log in again")
        return user
