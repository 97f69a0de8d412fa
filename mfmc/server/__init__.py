"""The platform server (`mfmc serve`): the store behind an authenticated HTTP API.

It holds users' public keys, the graph, signed rules, photos, faces, tags and consent, cached fakes and the audit
log; it holds no private key, passphrase or plaintext embedding, and imports no client code
(`tests/server/test_boundary.py` checks both).

```python
from mfmc.server.app import create_app
from mfmc.server.settings import ServerSettings, open_server
server = open_server(ServerSettings(data_dir=Path("mfmc-data")))   # SQLite in the data dir; db_url= for PostgreSQL
app = create_app(server)                                           # FastAPI; uvicorn serves it
```
"""
