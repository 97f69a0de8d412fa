"""The web page's part of the API: sign-in by a one-time code, the session cookie, and the rules editor's analysis.

`mount_web(app, auth)` adds, to the app `create_app` builds:
- `POST /api/auth/signin` (a key login only, not a web session): a one-time code for `<server>/web/signin.html#code=…`;
- `POST /api/auth/session {code}`: the code, once, for a session cookie (HttpOnly, SameSite=Strict);
- `POST /api/auth/logout`: drops the cookie;
- `POST /api/rules/analyze {text, name}`: who could ever / always see the actor's real face under `text`, and what
  it changes against their stored rules (who gains, who loses), over the current graph; nothing stored;
- the static page at `/web/` (and `/` redirecting there), with a strict Content-Security-Policy.

`WebSessions` (ASGI middleware) turns the session cookie into the bearer token of `/api/` requests that carry no
`Authorization` header, so the page uses exactly the API every client uses. Requests that change something
(anything but GET/HEAD) with the cookie, and the session/logout calls, must carry `X-Mfmc-Web: 1` and must not be
cross-site (`Sec-Fetch-Site`): with SameSite=Strict that is defence in depth against cross-site requests.
"""


import json
from collections.abc import Awaitable, Callable
from http.cookies import SimpleCookie
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import BaseModel, Field
from starlette.staticfiles import StaticFiles

from mfmc.errors import AuthenticationError, InvalidInputError, PermissionDeniedError, RuleError
from mfmc.server.auth import Authenticator
from mfmc.server.web.signin import SignIns

if TYPE_CHECKING:
    from mfmc.policy import Audience

SESSION_COOKIE = "mfmc_session"
WEB_HEADER = b"x-mfmc-web"
STATIC = Path(__file__).with_name("static")
SAFE_METHODS = ("GET", "HEAD")
EXCHANGE_PATHS = ("/api/auth/session", "/api/auth/logout")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; connect-src 'self'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
WEB_HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
               (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY")]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def session_of(headers: dict[bytes, bytes]) -> str | None:
    raw = headers.get(b"cookie")
    if not raw:
        return None
    cookie: SimpleCookie = SimpleCookie()
    try:
        cookie.load(raw.decode("latin-1"))
    except Exception:  # a malformed Cookie header is no session
        return None
    morsel = cookie.get(SESSION_COOKIE)
    return morsel.value if morsel is not None and morsel.value else None


async def _refuse(send: Send, message: str) -> None:
    body = json.dumps({"error": {"type": "PermissionDeniedError", "message": message,
                                 "help": "use the page itself (not another site) to make changes", "exit_code": 2}})
    await send({"type": "http.response.start", "status": 403,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body.encode()})


class WebSessions:
    """ASGI middleware: the session cookie as bearer token for `/api/`, cross-site checks, page security headers."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith("/api/"):
            headers = dict(scope.get("headers") or [])
            token = session_of(headers)
            unsafe = scope["method"] not in SAFE_METHODS
            if unsafe and (token is not None or path in EXCHANGE_PATHS):
                site = headers.get(b"sec-fetch-site", b"same-origin")
                if site not in (b"same-origin", b"none"):
                    await _refuse(send, f"cross-site request refused ({site.decode('latin-1')})")
                    return
                if headers.get(WEB_HEADER) != b"1":
                    await _refuse(send, "requests of the web page need the header `X-Mfmc-Web: 1`")
                    return
            if token is not None and b"authorization" not in headers:
                scope = {**scope, "headers": [*scope["headers"], (b"authorization", f"Bearer {token}".encode())]}
            await self.app(scope, receive, send)
            return
        if path == "/" or path.startswith("/web"):
            async def secured(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    message = {**message, "headers": [*message.get("headers", []), *WEB_HEADERS]}
                await send(message)

            await self.app(scope, receive, secured)
            return
        await self.app(scope, receive, send)


class CodeIn(BaseModel):
    code: str = Field(max_length=128)


class AnalyzeIn(BaseModel):
    text: str = Field(max_length=256 * 1024)
    name: str = Field(default="<rules>", max_length=256)


def audience_json(audience: "Audience") -> dict[str, Any]:
    return {**audience.to_dict(), "text": audience.describe()}


def router_for(auth: Authenticator, signins: SignIns) -> APIRouter:
    server = auth.server
    router = APIRouter()

    def actor(authorization: Annotated[str | None, Header()] = None) -> str:
        if not authorization or not authorization.startswith("Bearer "):
            raise AuthenticationError("this request needs a login",
                                      help="sign in with `mfmc open --as NAME` (or send a bearer token)")
        return auth.user_of(authorization.removeprefix("Bearer ").strip())

    Actor = Annotated[str, Depends(actor)]

    @router.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/web/")

    @router.post("/api/auth/signin", tags=["auth"])
    def signin(user: Actor, request: Request) -> dict[str, Any]:
        """A one-time code for the web page (60 s), for a client logged in by key: a request with the web session
        cookie cannot make one (a session never extends itself)."""
        if request.cookies.get(SESSION_COOKIE):
            raise PermissionDeniedError("a web session cannot make sign-in links",
                                        help="the user's client makes them: `mfmc open --as NAME`")
        code = signins.issue(user)
        return {"code": code, "expires_in": signins.code_ttl_s, "path": f"/web/signin.html#code={code}"}

    @router.post("/api/auth/session", tags=["auth"])
    def session(body: CodeIn, request: Request) -> JSONResponse:
        """Exchange a sign-in code (once) for the session cookie (HttpOnly, SameSite=Strict)."""
        user, token = signins.redeem(body.code)
        response = JSONResponse({"user": user, "expires_in": signins.session_ttl_s})
        response.set_cookie(SESSION_COOKIE, token, max_age=signins.session_ttl_s, path="/", httponly=True,
                            samesite="strict", secure=request.url.scheme == "https")
        return response

    @router.post("/api/auth/logout", tags=["auth"])
    def logout() -> JSONResponse:
        response = JSONResponse({"signed_out": True})
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return response

    @router.post("/api/rules/analyze", tags=["rules"])
    def analyze_rules(body: AnalyzeIn, user: Actor) -> dict[str, Any]:
        """Who could ever / always see the actor's real face under `text`, and who gains or loses it against
        the stored rules, over the current graph and every photo context (nothing stored)."""
        from mfmc.policy import PolicySet, analyze, diff

        graph = server.graph()
        new = PolicySet.from_sources([(body.text, body.name)], graph=graph)  # RuleError: 400
        owners = [p.owner for p in new]
        if owners != [user]:
            raise InvalidInputError(f"`{body.name}` governs {', '.join(f'`{o}`' for o in owners) or 'no face'}, "
                                    f"not the face of `{user}`", help=f"start the rules with `face {user}`")
        stored = server.rules(user, user)
        note = None
        old = PolicySet.from_sources([], graph=graph)
        if stored is not None:
            try:
                old = PolicySet.from_sources([(stored.text, stored.name)], graph=graph)
            except RuleError:
                note = "the stored rules no longer compile (they act as `default nobody`)"
        result = analyze(new, graph, user)
        change = diff(old, new, graph, faces=[user])[0]
        return {"face": user, "ever": audience_json(result.ever), "always": audience_json(result.always),
                "dead": [d.to_dict() for d in result.dead], "warnings": [w.render() for w in new.warnings],
                "change": {"stored_version": server.rules_version(user), "note": note,
                           "gains": audience_json(change.gains), "loses": audience_json(change.loses),
                           "gained": change.gained, "lost": change.lost,
                           "strangers_gain": change.strangers_gain, "strangers_lose": change.strangers_lose}}

    return router


def mount_web(app: FastAPI, auth: Authenticator) -> None:
    """Add the web page and its endpoints to the API app (`mfmc.server.app.create_app` calls this)."""
    signins = SignIns(auth)
    app.state.signins = signins
    app.include_router(router_for(auth, signins))
    app.mount("/web", StaticFiles(directory=STATIC, html=True), name="web")
    app.add_middleware(WebSessions)
