"""Fixtures for the client tests: the platform tests' helpers (the embedded pipeline and the small openpeople
target pool are the root conftest's)."""

from tests.platform.conftest import db, platform, sqlite_platform  # noqa: F401 - fixtures
