"""The published OpenAPI document: the app's spec on default settings (no environment, no `.env`),
as `web/client/openapi.json` holds it and the TypeScript client is generated from it.

    python -m api.published_spec > web/client/openapi.json     (what `make client` runs)

`tests/unit/test_typescript_client.py` fails when the checked-in copy or the client generated from
it is out of date with the routes."""

import json
import sys

from settings import Settings
from tools.registry import DEFAULT_TOOLS


def published_spec() -> dict:
    from api.main import create_app

    return create_app(Settings.model_construct(), DEFAULT_TOOLS).openapi()


def published_spec_text() -> str:
    return json.dumps(published_spec(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(published_spec_text())
