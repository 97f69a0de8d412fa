"""Fixtures for the client tests: the swap tests' embedded pipeline and small openpeople target pool (session
scoped, shared with tests/swap when both run), and the platform tests' helpers."""

from tests.platform.conftest import db, platform, sqlite_platform  # noqa: F401 - fixtures
from tests.swap.conftest import pipeline, pool, pool_dir  # noqa: F401 - fixtures
