"""The ASGI app for `mfmc serve --workers N`: each uvicorn worker process builds its server from the settings
the `serve` command handed over (`MFMC_SERVE_SETTINGS`) and the vision settings (`MFMC_*`: models, devices, the
model cache), both read once here at the process edge."""

from __future__ import annotations

import os

from mfmc.server.app import create_app
from mfmc.server.settings import ServerSettings, open_server
from mfmc.vision.settings import VisionSettings, configure

configure(VisionSettings.from_env(os.environ))
_settings = ServerSettings.from_json(os.environ["MFMC_SERVE_SETTINGS"])
app = create_app(open_server(_settings), audience=_settings.audience, token_ttl_s=_settings.token_ttl_s,
                 max_body=_settings.max_body_mb * 1024 * 1024)
