"""The client side of the platform (a Python SDK; the CLI's platform commands run on it).

A `Client` is one user's device: their keyring (private keys, own and friends' embeddings), their face backend,
and an `Api` connection to the server, which it talks to only over HTTP.

```python
from mfmc.client import Api, Client
api = Api.connect("http://127.0.0.1:8750")
alice = Client(api, "alice", Path("~/.mfmc/alice"), backend=VisionBackend, passphrase=lambda name: "…")
alice.create(); alice.enroll(["alice.jpg"]); alice.set_rules(open("alice.mfmc").read(), "alice.mfmc")
up = alice.upload("party.jpg")                 # identify + client-side fakes, then one POST
view = alice.render(up.photo_id)                # alice's own view only
```
"""

from mfmc.client.api import Api
from mfmc.client.client import Client, ClientRendering, sharing_level, upload_key

__all__ = ["Api", "Client", "ClientRendering", "sharing_level", "upload_key"]
