"""The web tests' platform: a real server (uvicorn on a free 127.0.0.1 port, the cheap grid face backend) and
four users' real clients, with rules that give each viewer a different view of the same group photo.

Photo 1 (rules model, uploaded by alice): faces alice, bob, carol.
- alice: `default friends`, `hide from carol`  -> bob sees alice real; carol and dave see a fake
- bob:   `default nobody`, `reveal to carol`   -> only carol sees bob real
- carol: `default friends`                      -> alice (her only friend) sees carol real
So alice sees [real, fake, real], bob [real, real, fake], carol [fake, real, real], dave [fake, fake, fake].
Photo 2 (explicit model, uploaded by alice): one face, bob's, tagged as bob (consent pending).
Photo 3 (explicit model, uploaded by alice): one face, dave's, not tagged.
Photo 4 (rules model, uploaded by carol, album with markup in its name): carol alone.
Friends: alice-bob, alice-carol. dave is nobody's friend and has no rules.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from fastapi import FastAPI

from mfmc.client import Api, Client
from mfmc.client.embedded import serve_in_thread
from mfmc.crypto.keys import KdfParams
from mfmc.server.app import create_app
from mfmc.server.settings import ServerSettings, open_server
from mfmc.service.testing import GridBackend, grid_photo

PASSPHRASE = "correct horse battery staple"
PEOPLE = {"alice": 0, "bob": 1, "carol": 2, "dave": 3}
RULES = {
    "alice": "face alice\ndefault friends\nhide from carol\n",
    "bob": "face bob\ndefault nobody\nreveal to carol\n",
    "carol": "face carol\ndefault friends\n",
}
FRIENDS = [("alice", "bob"), ("alice", "carol")]
ALBUM = '<b>party</b> & "friends"'
CELL = 32


@dataclass
class Site:
    app: FastAPI
    url: str
    data_dir: Path
    clients: dict[str, Client]
    photos: dict[str, int] = field(default_factory=dict)
    originals: dict[str, np.ndarray] = field(default_factory=dict)


@contextmanager
def running_site(root: Path) -> Iterator[Site]:
    server = open_server(ServerSettings(data_dir=root, create=True, backend="grid"))
    app = create_app(server)
    with serve_in_thread(app) as url:
        clients = {name: Client(Api.connect(url), name, root / "clients" / name, backend=GridBackend(),
                                passphrase=lambda _name: PASSPHRASE, kdf=KdfParams.FAST_INSECURE)
                   for name in PEOPLE}
        for name, client in clients.items():
            client.create()
            client.enroll([grid_photo([PEOPLE[name]], seed=100 + PEOPLE[name])])
        for a, b in FRIENDS:
            clients[a].befriend(b)
            clients[b].befriend(a)
        for name, text in RULES.items():
            clients[name].set_rules(text, f"{name}.mfmc")
        for client in clients.values():
            client.sync()
        site = Site(app, url, root, clients)
        group = grid_photo([0, 1, 2], seed=7)
        site.photos["group"] = clients["alice"].upload(group, model="rules").photo_id
        site.originals["group"] = group
        tagged = grid_photo([1], seed=8)
        site.photos["tagged"] = clients["alice"].upload(tagged, model="explicit").photo_id
        site.originals["tagged"] = tagged
        clients["alice"].tag(site.photos["tagged"], 0, "bob")
        untagged = grid_photo([3], seed=10)
        site.photos["untagged"] = clients["alice"].upload(untagged, model="explicit").photo_id
        site.originals["untagged"] = untagged
        solo = grid_photo([2], seed=9)
        site.photos["album"] = clients["carol"].upload(solo, model="rules", album=ALBUM).photo_id
        site.originals["album"] = solo
        try:
            yield site
        finally:
            for client in clients.values():
                client.api.close()
            server.close()
