"""Logs carry ids, never content: a realistic run through the real API (a titled session with
metadata, reasoning, text and tool rounds, tool outputs and refused arguments, a write the
database refuses, a follow-up, Stop, delete, a Checkout) leaves none of its text, nor a
secret, in any log the stack's servers, the worker or the API write."""

import asyncio
import logging
import uuid
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from local.model import chunks
from tests.support.helpers import eventually, follow, marker, queue, send, start_turn, stop
from tests.support.scripted_model import Stream, text_reply
from tests.support.sse_client import assembled_text, part_types
from tests.support.stripe_keys import FRONTEND_ORIGIN, STRIPE_KEY, STRIPE_WEBHOOK_SECRET


def content(kind: str) -> str:
    """Text only this test sends or makes up: its random part, found in a log, can only come from this
    run. Short enough that no error message shortens it (pydantic cuts values past 50 characters)."""
    return f"{kind}-{uuid.uuid4().hex[:12]}"


def random_part(value: str) -> str:
    return value.rsplit("-", 1)[-1]


class Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        # The message, its arguments, and any traceback: everything a handler of ours would write.
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def in_process_logs() -> Iterator[Keep]:
    """Every record of the in-process API and worker (and the libraries they use), at DEBUG."""
    root, keep = logging.getLogger(), Keep()
    level = root.level
    root.addHandler(keep)
    root.setLevel(logging.DEBUG)
    try:
        yield keep
    finally:
        root.removeHandler(keep)
        root.setLevel(level)


def log_files(log_dir: Path) -> dict[Path, str]:
    return {path: path.read_bytes().decode(errors="replace") for path in sorted(log_dir.rglob("*")) if path.is_file()}


async def execute(database_url: str, statement: str) -> None:
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


async def tier(http, user) -> str:
    return (await http.get("/api/credits/subscription", headers=user.headers)).json()["tier"]


async def idle(http, user, session_id: str) -> bool:
    detail = (await http.get(f"/api/chat/sessions/{session_id}", headers=user.headers)).json()
    return detail["active_turn"] is None


def tool_calls(*calls: tuple[str, str]) -> list[dict]:
    parts: list[dict] = []
    for index, (name, arguments) in enumerate(calls):
        parts += [chunks.tool_call(index, "", call_id=f"call_{uuid.uuid4().hex[:8]}", name=name),
                  chunks.tool_call(index, arguments)]
    return parts


@pytest.mark.timeout(240)
async def test_no_content_and_no_secret_reaches_a_log(http, user, settings, stack, scripted, stripe_sandbox,
                                                      in_process_logs, capfd):
    said = {kind: content(kind) for kind in (
        "title", "metadata-key", "metadata-value", "user-message", "reasoning", "model-text", "file-content",
        "refused-argument", "model-answer", "slow-answer", "follow-up", "follow-up-answer", "stopped-answer",
        "unstorable-answer", "after-failure")}
    command_output = content("command-output")  # printed by the command, never in its text
    head, tail = command_output.split("-", 1)
    tag = marker()
    scripted.script(
        tag,
        Stream([chunks.reasoning(said["reasoning"]), chunks.text(said["model-text"]),
                *tool_calls(("write_workspace_file", f'{{"name": "notes.txt", "content": "{said["file-content"]}"}}'),
                            ("bash_exec", f'{{"command": "printf %s-%s {head} {tail}"}}')),
                chunks.finish("tool_calls"), chunks.usage(5, 5, 0.0001)]),
        Stream([*tool_calls(("read_workspace_file", '{"file": "notes.txt"}'),
                            ("write_workspace_file", f'{{"name": ["{said["refused-argument"]}"]}}')),
                chunks.finish("tool_calls"), chunks.usage(5, 5, 0.0001)]),
        text_reply(said["model-answer"]),
        text_reply(" ".join([said["slow-answer"]] * 30), delay=0.05),
        text_reply(said["follow-up-answer"]),
        text_reply(" ".join([said["stopped-answer"]] * 200), delay=0.05),
    )

    created = await http.post("/api/chat/sessions", headers=user.headers, json={
        "title": said["title"], "metadata": {said["metadata-key"]: said["metadata-value"]}})
    assert created.status_code == 201, created.text
    session_id = created.json()["id"]

    # Reasoning, text, two tool rounds (a file written and read back, a command, refused arguments), an answer.
    events = await asyncio.wait_for(send(http, user, session_id, f"{said['user-message']} {tag}"), 60)
    assert assembled_text(events) == said["model-text"] + said["model-answer"]
    outputs = " ".join(str(e.part) for e in events if e.part and e.part["type"].startswith("tool-output"))
    assert said["file-content"] in outputs and said["refused-argument"] in outputs

    # A follow-up while a turn streams (queued, then the next turn at once).
    await start_turn(http, user, session_id, "go on", read=5)
    assert (await queue(http, user, session_id, said["follow-up"])).status_code == 202
    followed = await asyncio.wait_for(follow(http, user, session_id), 60)
    assert assembled_text(followed).endswith(said["follow-up-answer"])
    await eventually(lambda: idle(http, user, session_id), bool)

    # Stop mid-answer: the partial answer is stored.
    await start_turn(http, user, session_id, "once more", read=10)
    assert (await stop(http, user, session_id)) == {"stopped": True}
    detail = (await http.get(f"/api/chat/sessions/{session_id}", headers=user.headers)).json()
    assert any(said["stopped-answer"] in (m["content"] or "") for m in detail["messages"])

    # A write the database refuses for good (the failure names no value), then a turn that works.
    refused = uuid.uuid4().hex
    await execute(stack.database_url, f"""
        CREATE FUNCTION refuse_{refused}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'refused by the test'; END $$""")
    await execute(stack.database_url, f"""
        CREATE TRIGGER refuse_{refused} BEFORE INSERT ON chat_messages FOR EACH ROW
        WHEN (NEW.role = 'assistant' AND NEW.content LIKE '%{refused}%') EXECUTE FUNCTION refuse_{refused}()""")
    try:
        scripted.script(refused, text_reply(f"{said['unstorable-answer']} {refused}"), text_reply(said["after-failure"]))
        other = await http.post("/api/chat/sessions", json={}, headers=user.headers)
        failing = await asyncio.wait_for(send(http, user, other.json()["id"], f"write {refused}"), 60)
        assert "error" in part_types(failing)
        assert assembled_text(await send(http, user, other.json()["id"], "next")) == said["after-failure"]
    finally:
        await execute(stack.database_url, f"DROP TRIGGER refuse_{refused} ON chat_messages")
        await execute(stack.database_url, f"DROP FUNCTION refuse_{refused}()")

    # A Checkout through Stripe (the sandbox), paid, and its signed webhooks.
    sandbox = stripe_sandbox[0]
    sandbox.deliver_webhooks = True
    checkout = await http.post("/api/credits/subscription", headers=user.headers, json={
        "tier": "PRO", "success_url": f"{FRONTEND_ORIGIN}/billing/done"})
    assert checkout.status_code == 200, checkout.text
    sandbox.complete_checkout(checkout.json()["url"].rstrip("/").rsplit("/", 1)[-1])
    await sandbox.flush_webhooks()
    await eventually(lambda: tier(http, user), lambda now: now == "PRO")

    assert (await http.delete(f"/api/chat/sessions/{session_id}", headers=user.headers)).status_code == 204
    await asyncio.sleep(1)  # what the servers and the worker log about the last steps

    captured = capfd.readouterr()
    places = {**{str(path): body for path, body in log_files(stack.log_dir).items()},
              "in-process logging": "\n".join(in_process_logs.lines),
              "stdout": captured.out, "stderr": captured.err}
    assert set(places) >= {str(stack.log_dir / name) for name in ("postgres.log", "redis.log", "temporal.log")}
    assert len(in_process_logs.lines) > 100  # the capture is live: the libraries' DEBUG records are in it
    forbidden = {**{kind: random_part(value) for kind, value in said.items()},
                 "command-output": random_part(command_output), "jwt secret": settings.jwt_secret,
                 "stripe key": STRIPE_KEY, "stripe webhook secret": STRIPE_WEBHOOK_SECRET,
                 "model key": settings.model_api_key}
    leaks = [f"{kind} in {place}: ...{body[max(0, body.find(value) - 300):body.find(value) + 100]}..."
             for place, body in places.items() for kind, value in forbidden.items() if value in body]
    assert not leaks, "\n\n".join(leaks)
