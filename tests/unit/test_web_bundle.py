"""The playground's bundle is what its sources build: `api/static/playground/app.js` is checked in
(so `make dev` needs no Node.js) and rebuilt here from `web/src/` with the pinned `ai` and esbuild
(`web/package-lock.json`); a difference fails with what to run. The page's view rules (the
round-retry contract, delivered follow-ups, the history from rows) are checked in node."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
BUNDLE = ROOT / "api" / "static" / "playground" / "app.js"

needs_web = pytest.mark.skipif(not (WEB / "node_modules" / "esbuild").exists() or not shutil.which("node"),
                               reason="needs node and `npm ci --prefix web` (make test does it)")


@needs_web
def test_the_checked_in_bundle_is_built_from_the_sources(tmp_path):
    built = tmp_path / "app.js"
    subprocess.run(["node", str(WEB / "build.mjs"), str(built)], check=True, timeout=120, cwd=WEB)
    assert built.read_bytes() == BUNDLE.read_bytes(), "api/static/playground/app.js is out of date: run `make web`"


@needs_web
def test_the_pages_view_rules():
    result = subprocess.run(["node", str(WEB / "test" / "view.test.mjs")], capture_output=True, text=True, timeout=60,
                            cwd=WEB)
    assert result.returncode == 0, result.stderr


def test_the_page_loads_nothing_from_elsewhere():
    page = (BUNDLE.parent / "index.html").read_text()
    assert "http://" not in page and "https://" not in page
    bundle = BUNDLE.read_text()
    assert 'from"ai"' not in bundle and "import(" not in bundle  # the SDK is inside, nothing is fetched
