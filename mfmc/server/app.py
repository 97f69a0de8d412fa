"""The HTTP API (FastAPI): `create_app(server)`; OpenAPI schema at `/openapi.json`, interactive docs at `/docs`.

Binary fields (images, envelopes, signatures, notices) travel as base64 strings in JSON. Every error is a JSON
body `{"error": {"type", "message", "help", "exit_code"}}` with a 4xx status (5xx only for server faults, never
with a stack trace), so the CLI prints the same `error:` line over HTTP as in-process. See docs/api.md.
"""


import base64
import binascii
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from mfmc.errors import (
    AuthenticationError,
    InvalidInputError,
    MfmcError,
    NotFoundError,
    PermissionDeniedError,
    ServerUnavailableError,
    StoreError,
    UnknownUserError,
)
from mfmc.server.auth import Authenticator
from mfmc.server.core import RuleRecord, Server, UploadFace
from mfmc.server.web import mount_web
from mfmc.service.records import FaceDecision, FaceSummary

log = logging.getLogger("mfmc.server")
API_VERSION = "1"
DEFAULT_MAX_BODY = 32 * 1024 * 1024


def status_of(err: MfmcError) -> int:
    if isinstance(err, AuthenticationError):
        return 401
    if isinstance(err, PermissionDeniedError):
        return 403
    if isinstance(err, UnknownUserError | NotFoundError):
        return 404
    if isinstance(err, ServerUnavailableError):
        return 503
    if isinstance(err, InvalidInputError) or err.exit_code == 2:
        return 400
    if isinstance(err, StoreError):
        return 409
    return 422  # crypto refusals and other runtime errors the client caused (exit code 1)


def error_body(kind: str, message: str, help_: str | None, exit_code: int) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message, "help": help_, "exit_code": exit_code}}


def b64d(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInputError(f"`{what}` is not valid base64") from None


def b64e(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


# ---------------------------------------------------------------------------------------------- request bodies
class ChallengeIn(BaseModel):
    user: str = Field(max_length=64)


class TokenIn(BaseModel):
    user: str = Field(max_length=64)
    challenge: str = Field(max_length=512)
    answer: str = Field(max_length=4096, description="base64 of the signed challenge")


class UserIn(BaseModel):
    name: str = Field(max_length=64)
    public_keys: str = Field(max_length=4096)


class RulesIn(BaseModel):
    owner: str = Field(max_length=64)
    name: str = Field(default="<rules>", max_length=256)
    text: str = Field(max_length=256 * 1024)
    signature: str = Field(max_length=4096, description="base64 of the owner's signature")
    version: int = Field(ge=1)


class ValidateIn(BaseModel):
    text: str = Field(max_length=256 * 1024)
    name: str = Field(default="<rules>", max_length=256)


class RotateIn(BaseModel):
    notice: str = Field(max_length=8192)
    rules: RulesIn | None = None


class EnvelopeIn(BaseModel):
    envelope: str = Field(max_length=1024 * 1024)


class RevokeIn(BaseModel):
    notice: str = Field(max_length=8192)


class AckIn(BaseModel):
    ids: list[int] = Field(max_length=10_000)


class FaceIn(BaseModel):
    box: tuple[float, float, float, float]
    score: float = 1.0
    landmarks: list[tuple[float, float]] = Field(default_factory=list, max_length=68)
    owner: str | None = Field(default=None, max_length=64)
    state: str = Field(max_length=20)
    fake_verified: bool | None = None
    fake_fallback: str | None = Field(default=None, max_length=16)
    fake_error: str | None = Field(default=None, max_length=200)


class UploadIn(BaseModel):
    image: str = Field(description="base64 of a PNG")
    model: str = Field(default="rules", max_length=16)
    album: str | None = Field(default=None, max_length=256)
    faces: list[FaceIn] = Field(max_length=512)
    client_key: str = Field(max_length=128, description="the client's idempotency key for this upload")


class TagIn(BaseModel):
    user: str = Field(max_length=64)


class ConsentIn(BaseModel):
    grant: bool = True


# ---------------------------------------------------------------------------------------------- responses
def decision_json(d: FaceDecision) -> dict[str, Any]:
    return {"index": d.index, "decision": "reveal" if d.reveal else "fake", "reasons": list(d.reasons),
            "owner": d.owner, "fake": str(d.fake), "fallback": str(d.fallback) if d.fallback else None}


def summary_json(f: FaceSummary) -> dict[str, Any]:
    return {"index": f.index, "box": list(f.box), "owner": f.owner, "state": f.state, "tag": f.tag,
            "consent": f.consent, "fallback": str(f.fallback) if f.fallback else None}


def rules_json(r: RuleRecord) -> dict[str, Any]:
    return {"owner": r.owner, "name": r.name, "text": r.text, "signature": b64e(r.signature), "version": r.version}


def rules_in(body: RulesIn) -> RuleRecord:
    return RuleRecord(body.owner, body.name, body.text, b64d(body.signature, "signature"), body.version)


class BodyLimit:
    """ASGI middleware: refuse request bodies over `limit` bytes (413), by Content-Length and while reading."""

    def __init__(self, app: Callable[..., Awaitable[None]], limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]],
                       send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            if not declared.isdigit() or int(declared) > limit:
                await _too_large(send, limit)
                return
            await self.app(scope, receive, send)
            return
        # no Content-Length (chunked): read the body here, up to the limit, then hand it on
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if len(body) > limit:
                await _too_large(send, limit)
                return
            if not message.get("more_body", False):
                break
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)


async def _too_large(send: Callable[[dict[str, Any]], Awaitable[None]], limit: int) -> None:
    size = f"{limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 else f"{limit // 1024} KiB"
    body = json.dumps(error_body("RequestTooLarge", f"request body over {size}", "send a smaller image",
                                 2)).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def create_app(server: Server, *, audience: str = "mfmc", token_ttl_s: int = 900,
               max_body: int = DEFAULT_MAX_BODY) -> FastAPI:
    """The API over `server`. `audience` names this deployment in login signatures."""
    auth = Authenticator(server, audience=audience, token_ttl_s=token_ttl_s)
    app = FastAPI(title="mfmc", version=API_VERSION,
                  description="My Face, My Choice: per-face access rules and verified fakes (see docs/api.md).")
    app.state.server = server
    app.state.auth = auth

    @app.exception_handler(MfmcError)
    async def _mfmc_error(_: Request, err: MfmcError) -> JSONResponse:
        return JSONResponse(error_body(type(err).__name__, err.message, err.help, err.exit_code),
                            status_code=status_of(err))

    @app.exception_handler(RequestValidationError)
    async def _bad_request(_: Request, err: RequestValidationError) -> JSONResponse:
        first = err.errors()[0] if err.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = f"invalid request: `{where}` {first.get('msg', 'is invalid').lower()}" if where \
            else f"invalid request: {first.get('msg', 'malformed body').lower()}"
        return JSONResponse(error_body("InvalidInputError", message, "see /docs for the request schema", 2),
                            status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, err: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(error_body("HTTPError", str(err.detail).lower(), None, 2 if err.status_code < 500 else 1),
                            status_code=err.status_code)

    @app.exception_handler(Exception)
    async def _internal(_: Request, err: Exception) -> JSONResponse:
        log.error("internal error: %s", type(err).__name__)
        return JSONResponse(error_body("InternalError", "internal server error", "see the server log", 1),
                            status_code=500)

    app.add_middleware(BodyLimit, limit=max_body)
    mount_web(app, auth)  # the web page (/web/), its sign-in and the rules editor's analysis: mfmc.server.web

    def actor(authorization: Annotated[str | None, Header()] = None) -> str:
        if not authorization or not authorization.startswith("Bearer "):
            raise AuthenticationError("this request needs a login", help="send `Authorization: Bearer <token>`")
        return auth.user_of(authorization.removeprefix("Bearer ").strip())

    Actor = Annotated[str, Depends(actor)]

    # ------------------------------------------------------------------ service
    @app.get("/api/health", tags=["service"])
    def health() -> dict[str, Any]:
        return {"ok": True, "api": API_VERSION, "audience": auth.audience}

    # ------------------------------------------------------------------ auth and users
    @app.post("/api/auth/challenge", tags=["auth"])
    def challenge(body: ChallengeIn) -> dict[str, Any]:
        return {"challenge": auth.challenge(body.user), "audience": auth.audience}

    @app.post("/api/auth/token", tags=["auth"])
    def token(body: TokenIn) -> dict[str, Any]:
        value, ttl = auth.token(body.user, body.challenge, b64d(body.answer, "answer"))
        return {"token": value, "expires_in": ttl, "user": body.user}

    @app.post("/api/users/check", tags=["users"])
    def check_name(body: ChallengeIn) -> dict[str, Any]:
        """Whether `user` can be registered (syntax, reserved words, taken regardless of case): 400 if not."""
        server.check_name_free(body.user)
        return {"user": body.user, "free": True}

    @app.post("/api/users", tags=["users"])
    def register(body: UserIn) -> dict[str, Any]:
        return {"created": server.register(body.name, body.public_keys), "user": body.name}

    @app.get("/api/users/{name}", tags=["users"])
    def user_exists(name: str) -> dict[str, Any]:
        """404 (with a did-you-mean) if `name` is not a user: user names are public, keys and data are not."""
        server.public_keys(name)
        return {"user": name}

    @app.get("/api/users", tags=["users"])
    def users(_: Actor) -> dict[str, Any]:
        return {"users": server.users()}

    @app.get("/api/users/{name}/keys", tags=["users"])
    def user_keys(name: str, _: Actor) -> dict[str, Any]:
        keys = server.public_keys(name)
        return {"user": name, "public_keys": keys.to_json(), "fingerprint": keys.fingerprint,
                "enrolled": server.is_enrolled(name)}

    @app.get("/api/me", tags=["users"])
    def me(user: Actor) -> dict[str, Any]:
        _, _, follows = server.graph_lists()
        return {"user": user, "enrolled": server.is_enrolled(user), "friends": server.friends_of(user),
                "following": sorted(b for a, b in follows if a == user),
                "followers": sorted(a for a, b in follows if b == user),
                "requests": [{"kind": k, "from": s} for k, s in server.requests_for(user)]}

    @app.get("/api/me/sharing", tags=["sharing"])
    def sharing(user: Actor) -> dict[str, Any]:
        """What the actor's client needs to decide its shares, in one request: enrolled, friends and their
        current keys, the actor's signed rules and the envelopes it sent."""
        found = server.rules(user, user)
        return {"enrolled": server.is_enrolled(user),
                "friends": [{"name": f, "public_keys": server.public_keys(f).to_json()}
                            for f in server.friends_of(user)],
                "rules": rules_json(found) if found else None, "version": server.rules_version(user),
                "sent": [{"recipient": r, "envelope": b64e(b)} for r, b in server.envelopes_from(user)]}

    @app.get("/api/me/inbox", tags=["sharing"])
    def inbox(user: Actor) -> dict[str, Any]:
        """What the actor's client syncs, in one request: relayed notices, envelopes addressed to it, its
        friends and their current keys."""
        return {"notices": [{"id": i, "sender": s, "kind": k, "blob": b64e(b)}
                            for i, s, k, b in server.notices_for(user)],
                "envelopes": [{"owner": o, "envelope": b64e(b)} for o, b in server.envelopes_for(user)],
                "friends": [{"name": f, "public_keys": server.public_keys(f).to_json()}
                            for f in server.friends_of(user)]}

    @app.post("/api/me/enrolled", tags=["users"])
    def enrolled(user: Actor) -> dict[str, Any]:
        server.set_enrolled(user)
        return {"user": user, "enrolled": True}

    @app.post("/api/users/{name}/rotate", tags=["users"])
    def rotate(name: str, body: RotateIn) -> dict[str, Any]:
        """No bearer token: the rotation notice, signed by the key the server holds for `name`, is the proof."""
        server.rotate_keys(name, b64d(body.notice, "notice"), rules_in(body.rules) if body.rules else None)
        keys = server.public_keys(name)
        return {"user": name, "fingerprint": keys.fingerprint}

    # ------------------------------------------------------------------ graph
    @app.get("/api/graph", tags=["graph"])
    def graph(_: Actor) -> dict[str, Any]:
        users, friends, follows = server.graph_lists()
        return {"users": users, "friends": [list(p) for p in friends], "follows": [list(p) for p in follows]}

    @app.post("/api/friends/{other}", tags=["graph"])
    def befriend(other: str, user: Actor) -> dict[str, Any]:
        return {"state": server.request_friend(user, other)}

    @app.delete("/api/friends/{other}", tags=["graph"])
    def unfriend(other: str, user: Actor) -> dict[str, Any]:
        return {"changed": server.unfriend(user, other)}

    @app.post("/api/follows/{followee}", tags=["graph"])
    def follow(followee: str, user: Actor) -> dict[str, Any]:
        return {"state": server.request_follow(user, followee)}

    @app.delete("/api/follows/{followee}", tags=["graph"])
    def unfollow(followee: str, user: Actor) -> dict[str, Any]:
        return {"changed": server.unfollow(user, user, followee)}

    @app.post("/api/followers/{follower}", tags=["graph"])
    def approve(follower: str, user: Actor) -> dict[str, Any]:
        return {"state": server.approve_follower(user, follower)}

    @app.delete("/api/followers/{follower}", tags=["graph"])
    def remove_follower(follower: str, user: Actor) -> dict[str, Any]:
        return {"changed": server.unfollow(user, follower, user)}

    # ------------------------------------------------------------------ rules
    @app.get("/api/rules/{owner}", tags=["rules"])
    def get_rules(owner: str, user: Actor) -> dict[str, Any]:
        found = server.rules(user, owner)
        return {"owner": owner, "rules": rules_json(found) if found else None,
                "version": server.rules_version(owner)}

    @app.put("/api/rules", tags=["rules"])
    def put_rules(body: RulesIn, user: Actor) -> dict[str, Any]:
        return {"owner": user, "version": server.put_rules(user, rules_in(body))}

    @app.post("/api/rules/validate", tags=["rules"])
    def validate(body: ValidateIn, _: Actor) -> dict[str, Any]:
        diagnostics = server.validate_rules(body.text, body.name)
        return {"ok": not diagnostics, "diagnostics": diagnostics}

    # ------------------------------------------------------------------ envelopes and notices
    @app.put("/api/envelopes", tags=["sharing"])
    def put_envelope(body: EnvelopeIn, user: Actor) -> dict[str, Any]:
        return {"recipient": server.put_envelope(user, b64d(body.envelope, "envelope"))}

    @app.get("/api/envelopes", tags=["sharing"])
    def envelopes(user: Actor) -> dict[str, Any]:
        return {"envelopes": [{"owner": o, "envelope": b64e(b)} for o, b in server.envelopes_for(user)]}

    @app.get("/api/envelopes/sent", tags=["sharing"])
    def sent(user: Actor) -> dict[str, Any]:
        return {"envelopes": [{"recipient": r, "envelope": b64e(b)} for r, b in server.envelopes_from(user)]}

    @app.post("/api/envelopes/{recipient}/revoke", tags=["sharing"])
    def revoke(recipient: str, body: RevokeIn, user: Actor) -> dict[str, Any]:
        server.revoke(user, recipient, b64d(body.notice, "notice"))
        return {"revoked": recipient}

    @app.get("/api/notices", tags=["sharing"])
    def notices(user: Actor) -> dict[str, Any]:
        return {"notices": [{"id": i, "sender": s, "kind": k, "blob": b64e(b)}
                            for i, s, k, b in server.notices_for(user)]}

    @app.post("/api/notices/ack", tags=["sharing"])
    def ack(body: AckIn, user: Actor) -> dict[str, Any]:
        server.ack_notices(user, body.ids)
        return {"acknowledged": len(body.ids)}

    # ------------------------------------------------------------------ photos
    @app.post("/api/photos", tags=["photos"])
    def upload(body: UploadIn, user: Actor) -> dict[str, Any]:
        faces = [UploadFace(tuple(f.box), f.score, tuple(tuple(p) for p in f.landmarks), f.owner,  # type: ignore[arg-type]
                            f.state, f.fake_verified, f.fake_fallback, f.fake_error) for f in body.faces]
        res = server.upload(user, b64d(body.image, "image"), model=body.model, album=body.album, faces=faces,
                            client_key=body.client_key)
        return {"photo": res.photo_id, "model": res.model, "created": res.created,
                "faces": [summary_json(f) for f in res.faces]}

    @app.get("/api/photos", tags=["photos"])
    def feed(user: Actor) -> dict[str, Any]:
        return {"viewer": user, "photos": [
            {"id": p.id, "uploader": p.uploader, "album": p.album, "model": p.model, "width": p.width,
             "height": p.height, "faces": p.faces, "render": f"/api/photos/{p.id}/render.png"}
            for p in server.photos()]}

    @app.get("/api/photos/{photo_id}", tags=["photos"])
    def photo_view(photo_id: int, user: Actor) -> dict[str, Any]:
        info = next((p for p in server.photos() if p.id == photo_id), None)
        decisions = server.decide(user, photo_id)
        return {"id": photo_id, "viewer": user, "uploader": info.uploader if info else None,
                "album": info.album if info else None, "model": info.model if info else None,
                "faces": [decision_json(d) for d in decisions], "render": f"/api/photos/{photo_id}/render.png",
                "mine": [summary_json(f) for f in server.faces(user, photo_id)]}

    @app.get("/api/photos/{photo_id}/render.png", tags=["photos"], response_class=Response,
             responses={200: {"content": {"image/png": {}}}})
    def render(photo_id: int, user: Actor) -> Response:
        out, png = server.render_png(user, photo_id)
        decisions = json.dumps([[d.index, int(d.reveal)] for d in out.decisions], separators=(",", ":"))
        return Response(png, media_type="image/png", headers={
            "X-Mfmc-Version": out.version, "X-Mfmc-Decisions": decisions, "X-Mfmc-Generated": str(out.generated),
            "Cache-Control": "private, no-store"})

    @app.get("/api/photos/{photo_id}/faces", tags=["photos"])
    def faces(photo_id: int, user: Actor) -> dict[str, Any]:
        return {"faces": [summary_json(f) for f in server.faces(user, photo_id)]}

    @app.get("/api/photos/{photo_id}/faces/{index}/audience", tags=["photos"])
    def audience(photo_id: int, index: int, user: Actor) -> dict[str, Any]:
        return server.audience(user, photo_id, index)

    @app.get("/api/photos/{photo_id}/faces/{index}/explain", tags=["photos"])
    def explain(photo_id: int, index: int, user: Actor,
                viewer: Annotated[str, Query(max_length=64)]) -> dict[str, Any]:
        return {"viewer": viewer, **decision_json(server.explain(user, photo_id, index, viewer))}

    @app.post("/api/photos/{photo_id}/faces/{index}/tag", tags=["tags"])
    def tag(photo_id: int, index: int, body: TagIn, user: Actor) -> dict[str, Any]:
        return {"consent": server.tag(user, photo_id, index, body.user)}

    @app.delete("/api/photos/{photo_id}/faces/{index}/tag", tags=["tags"])
    def untag(photo_id: int, index: int, user: Actor) -> dict[str, Any]:
        server.untag(user, photo_id, index)
        return {"untagged": True}

    @app.post("/api/photos/{photo_id}/faces/{index}/consent", tags=["tags"])
    def consent(photo_id: int, index: int, body: ConsentIn, user: Actor) -> dict[str, Any]:
        return {"consent": server.consent(user, photo_id, index, grant=body.grant)}

    @app.get("/api/tags/requests", tags=["tags"])
    def tag_requests(user: Actor) -> dict[str, Any]:
        pending = []
        for p in server.photos():
            if p.model != "explicit":
                continue
            pending.extend({"photo": p.id, "face": f.index, "uploader": p.uploader, "consent": f.consent}
                           for f in server.faces(user, p.id) if f.tag == user)
        return {"requests": pending}

    # ------------------------------------------------------------------ audit
    @app.get("/api/audit", tags=["audit"])
    def audit(user: Actor, photo: int | None = None) -> dict[str, Any]:
        return {"entries": [{"at": e.at.isoformat(), "actor": e.actor, "action": e.action, "photo": e.photo_id,
                             "version": e.version, "detail": e.detail} for e in server.audit_log(user, photo)]}

    return app
