"""A property-based fuzz of the whole HTTP API over its own OpenAPI spec, against the real stack.

`schemathesis run` (its config: schemathesis.toml beside this file) loads `/openapi.json` from
the test API and, with a fixed seed and a bounded budget, runs every operation: the spec's own
examples, boundary and invalid cases (coverage), generated cases (fuzzing), and stateful
sequences along the spec's links (create a session, then get, send, follow, stop, delete it).
Each answer must be no server error, have a status code, content type and body the spec
documents, and a schema-valid request must not be refused (tests/support/fuzz_checks.py lists
the few refusals that depend on state, each by its error code). Invalid requests must be refused.

It runs as a child process, so the API, the worker and the Temporal client keep this test's
event loop while it waits. The API is an instance of its own on the shared stack, with a platform
bot credential, so the bot's routes are fuzzed with the credential they take. Bodies are not read
past the first event on the SSE routes (`max-stream-events`): their status, headers and error
answers are fuzzed like any route's.
"""

import asyncio
import json
import os
import sys
import time
from pathlib import Path

from api.auth import issue_token
from database import session_maker
from models.platforms import Platform
from tests.support.servers import api_with
from workspace.files import save_file
from workspace.storage import DiskStorage

ROOT = Path(__file__).resolve().parents[2]
CONFIG = Path(__file__).with_name("schemathesis.toml")
# The whole run's ceiling: the budget in the config takes 30 to 40 s on 2 cores.
RUN_TIMEOUT_SECONDS = 150
# One service credential for every platform, so no generated platform is outside its scope.
BOT_TOKEN = "fuzz-bot-token-0123456789abcdef0123456789"
SERVICE_TOKEN = "fuzz-service-token-0123456789abcdef0123456789"


async def seed_a_file(settings, user_id: str) -> None:
    """A workspace file of the fuzz user's, so the download route is reached through the list's
    link. In no session: the fuzz deletes the sessions it finds, and their files with them."""
    sessions = session_maker(settings.database_url)
    async with sessions() as db:
        await save_file(db, DiskStorage(Path(settings.workspace_dir)), user_id, None, "notes.txt", b"fuzz",
                        max_bytes=1024)


async def run_schemathesis(api_url: str, report_dir: Path, env: dict[str, str]) -> tuple[int, str]:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "--no-color", "run",
        f"{api_url}/openapi.json", "--report", "json", "--report-dir", str(report_dir),
        # Hypothesis keeps its caches in the working folder: the report's, not the repository.
        cwd=report_dir, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        output, _ = await asyncio.wait_for(child.communicate(), RUN_TIMEOUT_SECONDS)
    except TimeoutError:
        child.kill()
        await child.wait()
        raise
    return child.returncode, output.decode(errors="replace")


async def test_the_api_keeps_to_its_own_spec(api_url, settings, user, tmp_path):
    await seed_a_file(settings, user.id)
    admin = issue_token(settings.jwt_secret, "fuzz-admin", role="admin", issuer=settings.jwt_issuer,
                        audience=settings.jwt_audience)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FUZZ_USER_TOKEN": user.token, "FUZZ_ADMIN_TOKEN": admin,
           "FUZZ_BOT_TOKEN": BOT_TOKEN, "FUZZ_SERVICE_TOKEN": SERVICE_TOKEN}

    async with api_with(settings, platform_bot_tokens={p.value: BOT_TOKEN for p in Platform},
                        service_tokens=[SERVICE_TOKEN]) as api:
        started = time.monotonic()
        code, output = await run_schemathesis(str(api.base_url).rstrip("/"), tmp_path, env)
        elapsed = time.monotonic() - started

    print(output)  # pytest shows it when the test fails, or with -s
    reports = list(tmp_path.glob("*.json"))
    assert code == 0 and len(reports) == 1, "schemathesis found failures: see its report above"
    report = json.loads(reports[0].read_text())
    print(f"schemathesis: {report['operations']['tested']} operations, {report['test_cases']['generated']} cases, "
          f"{report['test_cases']['unique_failures']} failures, {elapsed:.1f} s")
    assert report["operations"]["tested"] == report["operations"]["total"], report["operations"]
    assert all(phase["status"] == "success" for phase in report["phases"].values()), report["phases"]
