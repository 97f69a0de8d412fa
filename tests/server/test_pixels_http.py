"""The pixel property through HTTP: random graphs, rules and photos on a real server (uvicorn, 127.0.0.1), every
viewer asking for their own render with their own login. Revealed faces are pixel-identical to the original,
faked faces differ and come from a verified fake, nothing outside the faces changes."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from mfmc.policy import Context, Engine, Graph, PolicySet
from mfmc.service.testing import grid_photo
from tests.platform.test_properties import check_view, expected_owners, scenario
from tests.server.conftest import befriend, deployment


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
        owners = expected_owners(sc, graph)
        assert [f.owner for f in res.faces] == owners
        context = Context(uploader=up, album=sc["album"])
        for viewer, client in clients.items():
            view = client.render(res.photo_id)
            with dep.server.store.read() as tx:
                rows = {f.index: f for f in tx.faces(res.photo_id)}
                fakes = {(f.face_index, f.viewer): f for f in tx.fakes(res.photo_id)}
            check_view(view, image, res.faces, owners, engine.check, viewer, context, rows, fakes)
