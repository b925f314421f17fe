"""The checked-in TypeScript client is up to date with the routes: `web/client/openapi.json` is the
spec the app publishes (on default settings), `web/client/schema.d.ts` is what openapi-typescript
(pinned in `web/package-lock.json`) generates from it, and the client and an example of its use
compile with TypeScript. `make client` regenerates both after a route changes."""

import shutil
import subprocess
from pathlib import Path

import pytest

from api.published_spec import published_spec_text

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "web" / "client"
NODE_MODULES = ROOT / "web" / "node_modules"

needs_web = pytest.mark.skipif(not (NODE_MODULES / "openapi-typescript").exists() or not shutil.which("node"),
                               reason="needs node and `npm ci --prefix web` (make test does it)")


def test_the_checked_in_spec_is_the_one_the_app_publishes():
    assert published_spec_text() == (CLIENT / "openapi.json").read_text(), (
        "web/client/openapi.json is out of date with the routes: run `make client`")


@needs_web
def test_the_generated_types_are_up_to_date(tmp_path):
    generated = tmp_path / "schema.d.ts"
    subprocess.run(["node", str(CLIENT / "generate.mjs"), str(generated)], check=True, timeout=120,
                   cwd=CLIENT.parent)
    assert generated.read_text() == (CLIENT / "schema.d.ts").read_text(), (
        "web/client/schema.d.ts is out of date with web/client/openapi.json: run `make client`")


@needs_web
def test_the_client_compiles_against_the_types():
    result = subprocess.run(["node", str(NODE_MODULES / "typescript" / "bin" / "tsc"), "-p", str(CLIENT)],
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
