"""Web sign-in without the server ever holding a key: one-time codes that a key login buys, exchanged for a cookie.

1. The user's client logs in by key (`/api/auth/challenge` → `/api/auth/token`) and asks for a sign-in code
   (`POST /api/auth/signin`); `mfmc open --as alice` prints `<server>/web/signin#code=…`.
2. The page reads the code from the URL fragment (never sent to the server in a request line, so it is in no
   access log or Referer) and exchanges it once (`POST /api/auth/session`) for a session cookie: HttpOnly,
   SameSite=Strict, holding a bearer token of the server's `Authenticator` with the session's lifetime.

Codes live `CODE_TTL_S` seconds and work once: the store keeps only a hash of each pending code (a `meta` row),
and redeeming deletes that row, so two processes cannot both accept it. Expired rows are removed on each issue.
"""

from __future__ import annotations

import hashlib
import secrets
import time

from sqlmodel import col, delete, select

from mfmc.errors import AuthenticationError
from mfmc.server.auth import Authenticator
from mfmc.store import Store
from mfmc.store import models as m

CODE_TTL_S = 60
SESSION_TTL_S = 8 * 3600
PREFIX = "web.signin."


def _key(code: str) -> str:
    return PREFIX + hashlib.sha256(code.encode()).hexdigest()[:48]


class SignIns:
    """One-time sign-in codes over the store (shared by every server process) and the session tokens they buy."""

    def __init__(self, auth: Authenticator, *, code_ttl_s: int = CODE_TTL_S,
                 session_ttl_s: int = SESSION_TTL_S) -> None:
        self.auth = auth
        self.code_ttl_s = code_ttl_s
        self.session_ttl_s = session_ttl_s

    @property
    def store(self) -> Store:
        return self.auth.server.store

    def issue(self, user: str) -> str:
        """A fresh code for `user` (already authenticated by key); valid once, for `code_ttl_s` seconds."""
        code = secrets.token_urlsafe(24)
        now = int(time.time())
        with self.store.tx() as tx:
            stale = [row.key for row in tx.session.exec(select(m.Meta).where(col(m.Meta.key).startswith(PREFIX)))
                     if int(row.value.rsplit(".", 1)[1]) < now]
            if stale:
                tx.session.exec(delete(m.Meta).where(col(m.Meta.key).in_(stale)))  # type: ignore[call-overload]
            tx.session.add(m.Meta(key=_key(code), value=f"{user}.{now + self.code_ttl_s}"))
        return code

    def redeem(self, code: str) -> tuple[str, str]:
        """(user, session token) for a pending, unexpired code, which is used up; otherwise AuthenticationError."""
        key = _key(code)
        with self.store.tx() as tx:
            row = tx.session.get(m.Meta, key)
            value = row.value if row is not None else None
            taken = tx.session.exec(delete(m.Meta).where(col(m.Meta.key) == key))  # type: ignore[call-overload]
            won = bool(taken.rowcount)
        if value is None or not won:
            raise AuthenticationError("this sign-in link was already used or is not valid",
                                      help="run `mfmc open --as NAME` again for a new link")
        user, expiry = value.rsplit(".", 1)
        if int(expiry) < time.time():
            raise AuthenticationError("this sign-in link expired",
                                      help="run `mfmc open --as NAME` again (links work for "
                                           f"{self.code_ttl_s} s)")
        return user, self.auth.issue(user, self.session_ttl_s)
