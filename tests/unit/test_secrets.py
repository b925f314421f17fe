"""The published development secret never reaches production: the API and the worker refuse
to start with it unless APP_ENV=development says this is a developer's own machine."""

import pytest

from api.main import create_app
from settings import DEVELOPMENT_JWT_SECRET, Settings, UnsafeConfiguration


def test_the_development_secret_is_refused_outside_development():
    with pytest.raises(UnsafeConfiguration, match="JWT_SECRET"):
        Settings(_env_file=None, jwt_secret=DEVELOPMENT_JWT_SECRET).refuse_unsafe()
    Settings(_env_file=None, jwt_secret=DEVELOPMENT_JWT_SECRET, app_env="development").refuse_unsafe()
    Settings(_env_file=None, jwt_secret="a-secret-of-our-own-0123456789-abcdef").refuse_unsafe()


def test_a_short_secret_is_no_setting_at_all():
    with pytest.raises(ValueError):
        Settings(_env_file=None, jwt_secret="short")


async def test_the_api_does_not_start_with_it():
    app = create_app(Settings(_env_file=None, jwt_secret=DEVELOPMENT_JWT_SECRET))
    with pytest.raises(UnsafeConfiguration):
        async with app.router.lifespan_context(app):
            pass
