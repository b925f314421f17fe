"""The bot simulator as a person runs it (`python -m local.bot_simulator ...`), in its own
process, against the API: it links its pretend server and two members chat through it."""

import asyncio
import re
import sys

import pytest

from tests.support.helpers import db_rows, marker
from tests.support.platform_bot import BOT_TOKENS
from tests.support.scripted_model import text_reply
from tests.support.servers import api_with
from tests.support.users import make_user


@pytest.fixture(scope="module")
async def http(settings, worker):
    async with api_with(settings, platform_bot_tokens=BOT_TOKENS) as client:
        yield client


async def simulator(http, server_id: str, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "local.bot_simulator", "--api", str(http.base_url), "--bot-token", BOT_TOKENS["DISCORD"],
        "--server-id", server_id, "--server-name", "Sim guild", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode, out.decode()


async def test_the_simulator_links_a_server_and_members_chat_for_the_owner(http, settings, scripted, stack):
    owner = make_user(settings)
    server_id = f"sim-{marker()[3:-1]}"
    tag = marker()
    scripted.script(tag, text_reply("Hello from the copilot."), text_reply("Hello again."))

    code, out = await simulator(http, server_id, "say", "--as", "alice", f"hi {tag}")
    assert code == 1 and "not linked yet" in out

    code, out = await simulator(http, server_id, "link", "--confirm-with", owner.token)
    assert code == 0, out
    assert "http://127.0.0.1:3000/link/" in out and "linked: DISCORD link" in out

    code, out = await simulator(http, server_id, "say", "--as", "alice", f"hi {tag}")
    assert code == 0 and "[Sim guild #general] bot: Hello from the copilot." in out, out
    code, out = await simulator(http, server_id, "say", "--as", "bob", "me too")
    assert code == 0 and "bot: Hello again." in out, out

    usage = await db_rows(stack.database_url, "SELECT DISTINCT u.user_id FROM model_usage u JOIN chat_sessions s ON "
                                              "s.id = u.session_id WHERE s.user_id = :o", o=owner.id)
    assert usage == [{"user_id": owner.id}]

    code, out = await simulator(http, server_id, "dm-link", "--as", "alice")
    assert code == 0 and "/api/platform-linking/user-tokens/" in out
    token = re.search(r"/link/([A-Za-z0-9_-]+)", out).group(1)
    code, out = await simulator(http, server_id, "status", token)
    assert code == 0 and out.strip() == "pending"
