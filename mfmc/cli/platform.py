"""Platform commands (`mfmc init`, `user`, `keys`, `enroll`, `friend`, `upload`, `tag`, `consent`, `render`, `demo`, …).

Thin: every command parses its arguments, opens the `Platform` of the data dir and calls one service method.
The state lives in the data dir (`--data-dir`, env `MFMC_DATA_DIR`, default `./mfmc-data`); the database is
the SQLite file inside it unless `--db`/`MFMC_DB_URL` names another (e.g. `postgresql://user@host/db`).
Keyrings are unlocked with `MFMC_PASSPHRASE_<USER>` or `MFMC_PASSPHRASE`, or a prompt. Errors (a wrong
passphrase, a tampered ciphertext, a revoked share, a missing key) reach `mfmc.cli.main` as `MfmcError`s and
are printed as one `error:` line (plus a help line) with no traceback and no key or embedding material.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

DataDirOpt = Annotated[Path, typer.Option("--data-dir", envvar="MFMC_DATA_DIR",
                                          help="Where the platform keeps its state.")]
DbOpt = Annotated[str | None, typer.Option("--db", envvar="MFMC_DB_URL", show_envvar=True,
                                           help="Database URL (default: SQLite file in the data dir).")]
ServerOpt = Annotated[str | None, typer.Option(
    "--server", envvar="MFMC_SERVER", show_envvar=True,
    help="URL of a running `mfmc serve` (default: a server embedded in this command, over the data dir).")]
DEFAULT_DIR = Path("mfmc-data")

user_app = typer.Typer(help="Manage platform users.", no_args_is_help=True)
keys_app = typer.Typer(help="Manage a user's client keys and encrypted shares.", no_args_is_help=True)


def data_dir_of_env() -> Path:
    """The data dir commands without a --data-dir option protect (e.g. `anonymize -o` never writes into it)."""
    return Path(os.environ.get("MFMC_DATA_DIR") or DEFAULT_DIR)


def open_platform(data_dir: Path, db: str | None, server: str | None = None, *, create: bool = False):
    """The users' clients in `data_dir`, talking to the server at `server` (else `MFMC_SERVER`), or to a server
    embedded in this process (`mfmc.cli.session`)."""
    from mfmc.cli.session import open_session

    return open_session(data_dir, db, server if server is not None else os.environ.get("MFMC_SERVER"),
                        create=create)


def init(data_dir: DataDirOpt = DEFAULT_DIR, db: DbOpt = None) -> None:
    """Create (or check) a data dir and its database schema; safe to run again."""
    with open_platform(data_dir, db, create=True) as p:
        tightened = p.store.make_private()  # real faces: owner-only modes, also for data dirs made before
        print(f"ok: data dir `{p.data_dir}` ready (schema version {p.store.version}, "
              f"{'sqlite' if p.store.is_sqlite else 'postgresql'})"
              + (f"; made {tightened} file(s) private (0600/0700)" if tightened else ""))


@user_app.command("add")
def user_add(names: Annotated[list[str], typer.Argument(help="User names.")],
             data_dir: DataDirOpt = DEFAULT_DIR, db: DbOpt = None, server: ServerOpt = None) -> None:
    """Add users: each gets a client keyring (sealed keys); the server stores the public keys."""
    with open_platform(data_dir, db, server) as p:
        for name in names:
            print(f"{'added' if p.add_user(name) else 'exists'}: {name}")


@user_app.command("list")
def user_list(data_dir: DataDirOpt = DEFAULT_DIR, db: DbOpt = None, server: ServerOpt = None) -> None:
    """List users."""
    with open_platform(data_dir, db, server) as p:
        for name in p.users():
            print(name)


def enroll(name: Annotated[str, typer.Argument(help="The user.")],
           images: Annotated[list[Path], typer.Argument(help="Photos of the user (largest face is used).")],
           data_dir: DataDirOpt = DEFAULT_DIR, db: DbOpt = None, server: ServerOpt = None) -> None:
    """Compute the user's face embedding on their client; shared only as ciphertexts to friends."""
    with open_platform(data_dir, db, server) as p:
        n = p.enroll(name, [str(i) for i in images])
        print(f"enrolled: {name} ({n} image{'s' if n != 1 else ''})")


def friend(a: Annotated[str, typer.Argument(help="A user.")], b: Annotated[str, typer.Argument(help="Another user.")],
           data_dir: DataDirOpt = DEFAULT_DIR, db: DbOpt = None, server: ServerOpt = None) -> None:
    """Make A and B friends (symmetric); their clients exchange encrypted embeddings."""
    with open_platform(data_dir, db, server) as p:
        print(f"{'friends' if p.friend(a, b) else 'already friends'}: {a} {b}")


def unfriend(a: Annotated[str, typer.Argument(help="A user.")],
             b: Annotated[str, typer.Argument(help="Their friend.")],
             data_dir: DataDirOpt = DEFAULT_DIR, db: DbOpt = None, server: ServerOpt = None) -> None:
    """End the friendship; shared embeddings are deleted and revoked."""
    with open_platform(data_dir, db, server) as p:
        print(f"{'unfriended' if p.unfriend(a, b) else 'not friends'}: {a} {b}")


def follow(a: Annotated[str, typer.Argument(help="Follower.")], b: Annotated[str, typer.Argument(help="Followee.")],
           data_dir: DataDirOpt = DEFAULT_DIR, db: DbOpt = None, server: ServerOpt = None) -> None:
    """A follows B."""
    with open_platform(data_dir, db, server) as p:
        print(f"{'follows' if p.follow(a, b) else 'already follows'}: {a} -> {b}")


def unfollow(a: Annotated[str, typer.Argument(help="Follower.")], b: Annotated[str, typer.Argument(help="Followee.")],
             data_dir: DataDirOpt = DEFAULT_DIR, db: DbOpt = None, server: ServerOpt = None) -> None:
    """A stops following B."""
    with open_platform(data_dir, db, server) as p:
        print(f"{'unfollowed' if p.unfollow(a, b) else 'not following'}: {a} -> {b}")


def upload(image: Annotated[Path, typer.Argument(help="The photo.")],
           as_user: Annotated[str, typer.Option("--as", help="The uploader.")],
           model: Annotated[str, typer.Option("--model", help="proxy | explicit | rules.")] = "rules",
           reveal: Annotated[list[str] | None, typer.Option(
               "--reveal", help="Proxy: faces that stay real (index or identified user; repeat or comma list).")]
           = None,
           album: Annotated[str | None, typer.Option("--album", help="Album name (rules may test it).")] = None,
           as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
           data_dir: DataDirOpt = DEFAULT_DIR, db: DbOpt = None, server: ServerOpt = None) -> None:
    """Upload a photo: faces are identified and the required fakes made on the uploader's client first."""
    items = [x.strip() for r in (reveal or []) for x in r.split(",") if x.strip()]
    with open_platform(data_dir, db, server) as p:
        res = p.upload(str(image), as_user, model=model, reveal=items, album=album)
    if as_json:
        print(json.dumps({"photo": res.photo_id, "model": res.model, "created": res.created, "faces": [
            {"index": f.index, "box": list(f.box), "owner": f.owner, "state": f.state, "tag": f.tag,
             "consent": f.consent, "fallback": f.fallback, "note": f.note} for f in res.faces],
            "fallbacks": res.fallbacks},
            indent=2))
        return
    n, again = len(res.faces), "" if res.created else ", already uploaded"
    print(f"photo {res.photo_id} ({res.model}{again}): {n} face{'' if n == 1 else 's'}")
    for f in res.faces:
        who = f.owner or f.tag or "unknown"
        made = f", fake: {f.fallback}" if f.fallback else ""
        print(f"  face {f.index}: {who} [{f.state}{', tag ' + f.consent if f.tag else ''}{made}]"
              + (f" - {f.note}" if f.note else ""))
    if res.fallbacks:
        print(f"warning: {res.fallbacks} face(s) blocked: no verified fake could be made (see the log and "
              f"`mfmc audit {res.photo_id}`)", file=sys.stderr)


def photos(data_dir: DataDirOpt = DEFAULT_DIR, db: DbOpt = None, server: ServerOpt = None) -> None:
    """List uploaded photos."""
    with open_platform(data_dir, db, server) as p:
        for ph in p.photos():
            print(f"{ph.id}\t{ph.model}\t{ph.uploader}\t{ph.album or '-'}\t{ph.width}x{ph.height}")


def tag(photo: Annotated[int, typer.Argument(help="Photo id (`mfmc photos`).")],
        face: Annotated[int, typer.Argument(help="Face index.")],
        user: Annotated[str, typer.Argument(help="Who the face is.")],
        by: Annotated[str | None, typer.Option("--by", help="Who tags (default: the uploader).")] = None,
        data_dir: DataDirOpt = DEFAULT_DIR, db: DbOpt = None, server: ServerOpt = None) -> None:
    """Tag a face (explicit model); it stays fake until the tagged user consents."""
    with open_platform(data_dir, db, server) as p:
        print(f"tagged: photo {photo} face {face} as {user} (consent {p.tag(photo, face, user, by=by)})")


def untag(photo: Annotated[int, typer.Argument(help="Photo id (`mfmc photos`).")],
          face: Annotated[int, typer.Argument(help="Face index.")],
          by: Annotated[str | None, typer.Option("--by", help="Who untags.")] = None,
          data_dir: DataDirOpt = DEFAULT_DIR, db: DbOpt = None, server: ServerOpt = None) -> None:
    """Remove a tag; the face is faked again with a new fake."""
    with open_platform(data_dir, db, server) as p:
        p.untag(photo, face, by=by)
        print(f"untagged: photo {photo} face {face}")


def consent(photo: Annotated[int, typer.Argument(help="Photo id (`mfmc photos`).")],
            face: Annotated[int, typer.Argument(help="Face index.")],
            user: Annotated[str, typer.Argument(help="The tagged user.")],
            refuse: Annotated[bool, typer.Option("--refuse", help="Refuse or revoke consent.")] = False,
            data_dir: DataDirOpt = DEFAULT_DIR, db: DbOpt = None, server: ServerOpt = None) -> None:
    """The tagged user grants (or with --refuse refuses/revokes) consent to reveal their face."""
    with open_platform(data_dir, db, server) as p:
        print(f"consent {p.consent(photo, face, user, grant=not refuse)}: photo {photo} face {face} ({user})")


def render(photo: str, viewer: str, *, out: Path | None = None, as_json: bool = False,
           data_dir: Path = DEFAULT_DIR, db: str | None = None, server: str | None = None) -> None:
    """Platform mode of `mfmc render` (the command lives in mfmc.cli.render): PHOTO is an uploaded photo's id
    or the image file that was uploaded (found by its content)."""
    from mfmc.files import check_output, write_file_atomic
    from mfmc.service.imaging import encode_image

    with open_platform(data_dir, db, server) as p:
        photo_id = p.find_photo(photo)
        # before rendering: an image suffix, an existing writable folder, never a file inside the data dir
        target = check_output(out or Path(f"photo-{photo_id}-{viewer}.png"), protected=(p.data_dir,))
        res = p.render(photo_id, viewer)
    write_file_atomic(target, encode_image(res.image, target.suffix))  # no partial file with real faces
    if as_json:
        print(json.dumps({"photo": photo_id, "viewer": viewer, "version": res.version, "out": str(target),
                          "fallbacks": res.fallbacks,
                          "faces": [{"index": d.index, "decision": "reveal" if d.reveal else "fake",
                                     "fallback": d.fallback, "reasons": list(d.reasons)} for d in res.decisions]},
                         indent=2))
        return
    for d in res.decisions:
        made = f", fake: {d.fallback}" if d.fallback else ""
        print(f"face {d.index}: {'reveal' if d.reveal else 'fake'}{made} ({'; '.join(d.reasons)})")
    if res.fallbacks:
        print(f"warning: {res.fallbacks} face(s) blocked: no verified fake could be made (see the log)",
              file=sys.stderr)
    print(f"wrote {target}")


def audit(photo: Annotated[int | None, typer.Argument(help="Only this photo.")] = None,
          data_dir: DataDirOpt = DEFAULT_DIR, db: DbOpt = None) -> None:
    """Show the audit log (who did or viewed what, and which version)."""
    with open_platform(data_dir, db) as p:
        for e in p.audit_log(photo):
            fields = [f"{e.at:%Y-%m-%d %H:%M:%S}", e.actor, e.action, str(e.photo_id or "-"), e.version or "-",
                      e.detail]
            print("\t".join(fields))


@keys_app.command("rotate")
def keys_rotate(name: Annotated[str, typer.Argument(help="The user whose keys are replaced.")],
                data_dir: DataDirOpt = DEFAULT_DIR, db: DbOpt = None, server: ServerOpt = None) -> None:
    """Replace USER's key pair: shares are re-sealed, rules re-signed, friends told by a signed notice."""
    with open_platform(data_dir, db, server) as p:
        res = p.rotate_keys(name)
    print(f"rotated: {name} ({res.old_fingerprint} -> {res.new_fingerprint})")
    print(f"  re-shared with: {', '.join(res.reshared) or '-'}")
    print(f"  rules: {'re-signed as version ' + str(res.rules_version) if res.rules_version else 'not re-signed'}")
    if res.pending:
        print(f"  pending: {', '.join(res.pending)} (their clients accept the new keys on their next sync)")


@keys_app.command("sync")
def keys_sync(name: Annotated[str, typer.Argument(help="The user whose client fetches updates.")],
              data_dir: DataDirOpt = DEFAULT_DIR, db: DbOpt = None, server: ServerOpt = None) -> None:
    """Fetch USER's notices and friends' envelopes; fails (exit 1) if anything was refused."""
    with open_platform(data_dir, db, server) as p:
        done = p.client_sync(name, strict=True)
    for what in ("imported", "revoked", "rotated"):
        if done[what]:
            print(f"{what}: {', '.join(done[what])}")
    print(f"synced: {name}")


def demo(out: Annotated[Path, typer.Option("-o", "--out", help="Folder for the images.")] = Path("mfmc-demo"),
         seed: Annotated[int, typer.Option("--seed", help="Seed for fakes.")] = 0) -> None:
    """The paper's Fig. 1: A uploads a group photo of A-C; each sees only friends' real faces; E sees only fakes."""
    from mfmc.service.demo import run_demo

    result = run_demo(out, seed=seed, log=print)
    print(f"wrote {result.sheet} and {len(result.views)} per-viewer image{'' if len(result.views) == 1 else 's'} "
          f"in {out} ({result.seconds:.0f} s)")


def gc(min_age: Annotated[float, typer.Option(
           "--min-age", help="Only files older than this many seconds (younger ones may belong to a running upload).")]
       = 3600.0, data_dir: DataDirOpt = DEFAULT_DIR, db: DbOpt = None) -> None:
    """Remove stored images and fakes no photo refers to any more, and leftovers of interrupted writes."""
    with open_platform(data_dir, db) as p:
        removed = p.store.collect_garbage(min_age_s=min_age)
    print(f"removed: {removed} unreferenced file{'' if removed == 1 else 's'}")


def register(app: typer.Typer) -> None:
    """Add the platform commands to the root `mfmc` app."""
    app.command("init")(init)
    app.add_typer(user_app, name="user")
    app.add_typer(keys_app, name="keys")
    for fn in (enroll, friend, unfriend, follow, unfollow, upload, photos, tag, untag, consent, audit, demo, gc):
        app.command(fn.__name__)(fn)

