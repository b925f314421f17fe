"""Unit tests start no server: their settings point nowhere."""

import pytest

from settings import Settings


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings(_env_file=None, jwt_secret="test-secret-0123456789abcdef-0123456789")
