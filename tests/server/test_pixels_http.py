"""The pixel property through HTTP: random graphs, rules and photos on a real server (uvicorn, 127.0.0.1), every
viewer asking for their own render with their own login. Revealed faces are pixel-identical to the original,
faked faces differ and come from a verified fake, nothing outside the faces changes."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from mfmc.policy import Context, Engine, Graph, PolicySet
from mfmc.service.testing import grid_photo
from tests.platform.test_properties import _nobody, scenario
from tests.server.conftest import befriend, deployment


def _crop(image: np.ndarray, box: tuple[float, ...]) -> np.ndarray:
    x1, y1, x2, y2 = (int(v) for v in box)
    return image[y1:y2, x1:x2]


@pytest.mark.slow  # a real server and a whole deployment per example
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_rendered_pixels_over_http_match_the_engine(sc: dict) -> None:
    with tempfile.TemporaryDirectory(prefix="mfmc-http-prop-") as tmp, deployment(Path(tmp) / "d") as dep:
        api = dep.api()
        clients = {u: dep.client(u, api=api) for u in sc["users"]}
        for c in clients.values():
            c.create()
        for a, b in sc["friends"]:
            befriend(clients[a], clients[b])
        for a, b in sc["follows"]:
            clients[a].follow(b)
            clients[b].approve_follower(a)
        for u, c in clients.items():
            c.set_rules(sc["rules"][u], f"{u}.mfmc")
        for k, c in enumerate(clients.values()):
            c.enroll([grid_photo([k], seed=100 + k)])
        graph = Graph(users=sc["users"], friends=sc["friends"], follows=sc["follows"])
        engine = Engine(PolicySet.from_sources([(t, f"{u}.mfmc") for u, t in sc["rules"].items()], graph=graph),
                        graph)
        image = grid_photo(sc["people"], seed=sc["seed"])
        up = sc["uploader"]
        res = clients[up].upload(image, album=sc["album"])
        truth = [None if k is None else sc["users"][k] for k in sc["people"]]
        owners = [o if o is not None and not _nobody(sc["rules"][o]) and (o == up or o in graph.friends(up))
                  else None for o in truth]
        assert [f.owner for f in res.faces] == owners
        context = Context(uploader=up, album=sc["album"])
        for viewer, client in clients.items():
            view = client.render(res.photo_id)
            with dep.server.store.read() as tx:
                rows = {f.index: f for f in tx.faces(res.photo_id)}
                fakes = {(f.face_index, f.viewer): f for f in tx.fakes(res.photo_id)}
            for d, f in zip(view.decisions, res.faces, strict=True):
                want = engine.check(viewer=viewer, owner=owners[f.index], context=context).reveal
                assert d.reveal == want, (viewer, f, d.reasons)
                assert np.array_equal(_crop(view.image, f.box), _crop(image, f.box)) == want, (viewer, f.index)
                if not want:
                    if rows[f.index].state == "client_faked":
                        assert rows[f.index].fake_verified
                    else:
                        assert fakes[(f.index, d.fake.cache_viewer(viewer))].verified
            mask = np.ones(image.shape[:2], bool)
            for f in res.faces:
                x1, y1, x2, y2 = (int(v) for v in f.box)
                mask[y1:y2, x1:x2] = False
            assert np.array_equal(view.image[mask], image[mask])
