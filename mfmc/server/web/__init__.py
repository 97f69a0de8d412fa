"""The web page of `mfmc serve` (`/web/`): my feed, a photo with who sees my face and why, my rules (docs/web.md).

Plain HTML and a little JavaScript in `static/`, no build step, nothing loaded from elsewhere; the page talks to
the same HTTP API as every client, signed in by a one-time code that the user's client obtains by key
(`mfmc open --as NAME`), so the server never holds a key.
"""

from mfmc.server.web.routes import mount_web

__all__ = ["mount_web"]
