"""Each tool with its failure modes, and the framework rules every tool shares."""

import asyncio
import json
import time

import pytest
from temporalio.testing import ActivityEnvironment

from activities.store import insert_rows
from models.turn import NewMessageRow, ToolCall
from tests.support import extra_tools
from tests.support.helpers import db_rows
from tests.support.tool_harness import ToolHarness
from tools.registry import DEFAULT_TOOLS, tool_schemas
from workspace.files import file_bytes, owned_file


@pytest.fixture
def harness(settings) -> ToolHarness:
    return ToolHarness(settings)


def test_all_tool_schemas_fit_the_budget():
    assert len(json.dumps(tool_schemas(DEFAULT_TOOLS))) < 32_000


async def test_bash_exec_reports_status_and_output(harness):
    session_id, user_id = await harness.new_session()
    result = await harness.run(harness.request(session_id, user_id, "bash_exec",
                                               {"command": "echo out; echo err >&2; pwd; exit 3"}))
    assert result.error is None
    output = result.output
    assert output["exit_code"] == 3 and output["timed_out"] is False
    assert output["stdout"].splitlines() == ["out", "/workspace"]
    assert output["stderr"] == "err\n" and output["message"] == "Command executed with status code 3"


async def test_bash_exec_times_out_and_kills_the_command(harness):
    session_id, user_id = await harness.new_session()
    started = time.perf_counter()
    result = await harness.run(harness.request(session_id, user_id, "bash_exec", {"command": "sleep 30", "timeout": 1}))
    assert result.output["timed_out"] is True and time.perf_counter() - started < 5


async def test_bash_exec_scrubs_the_environment_and_redacts_secrets(harness, settings, monkeypatch):
    monkeypatch.setenv("SOME_PARENT_SECRET", "inherited-value")
    session_id, user_id = await harness.new_session()
    result = await harness.run(harness.request(session_id, user_id, "bash_exec",
                                               {"command": f"env; echo {settings.jwt_secret}"}))
    stdout = result.output["stdout"]
    assert "inherited-value" not in stdout and "DATABASE_URL" not in stdout
    assert settings.jwt_secret not in stdout and "[REDACTED]" in stdout


async def test_bad_input_is_a_tool_result(harness):
    session_id, user_id = await harness.new_session()
    result = await harness.run(harness.request(session_id, user_id, "bash_exec", {"command": "ls", "timeout": "soon"}))
    assert result.error.startswith("invalid_arguments")
    unknown = await harness.run(harness.request(session_id, user_id, "no_such_tool", {}))
    assert unknown.error.startswith("unknown_tool")


async def test_a_disallowed_tool_is_refused(harness):
    session_id, user_id = await harness.new_session()
    result = await harness.run(harness.request(session_id, user_id, "bash_exec", {"command": "touch ran"},
                                               allowed=["get_current_time"]))
    assert result.error.startswith("permission_denied")


async def test_prerequisite_refuses_until_the_other_tool_completed(harness):
    session_id, user_id = await harness.new_session()
    missing = "prerequisite_missing: Call 'list_workspace_files' before 'gated'."
    refused = await harness.run(harness.request(session_id, user_id, "gated", {}))
    assert refused.error == missing

    async def gated_after(rows: list[NewMessageRow]) -> str:
        async with harness.sessions.begin() as db:
            await insert_rows(db, session_id, "turn-0", rows)
        result = await harness.run(harness.request(session_id, user_id, "gated", {}, turn_id="turn-0"))
        return result.error or result.output

    # Called in the same round, not run yet: no result, so not done.
    assert await gated_after([NewMessageRow(key="a0", role="assistant", tool_calls=[
        ToolCall(id="c0", name="list_workspace_files"), ToolCall(id="c-gated", name="gated")])]) == missing
    # Called, but it failed.
    assert await gated_after([NewMessageRow(key="t0", role="tool", tool_call_id="c0",
                                            content=json.dumps({"error": "tool_timeout: too slow"}))]) == missing
    # Called and completed.
    assert await gated_after([
        NewMessageRow(key="a1", role="assistant", tool_calls=[ToolCall(id="c1", name="list_workspace_files")]),
        NewMessageRow(key="t1", role="tool", tool_call_id="c1", content=json.dumps({"files": []})),
    ]) == "guarded tool ran"


async def test_workspace_files_round_trip_and_refuse_traversal(harness):
    session_id, user_id = await harness.new_session()
    written = await harness.run(harness.request(session_id, user_id, "write_workspace_file",
                                                {"name": "notes.md", "content": "hello"}))
    uri = written.output["uri"]
    assert uri.startswith("workspace://")
    read = await harness.run(harness.request(session_id, user_id, "read_workspace_file", {"file": uri}))
    assert read.output["content"] == "hello"
    listed = await harness.run(harness.request(session_id, user_id, "list_workspace_files", {}))
    assert [f["uri"] for f in listed.output["files"]] == [uri]

    for name in ("../etc/passwd", "a/b.txt", "..", ".hidden"):
        bad = await harness.run(harness.request(session_id, user_id, "write_workspace_file",
                                                {"name": name, "content": "x"}))
        assert bad.error.startswith("invalid_name"), name
    for ref in ("workspace://../../etc/passwd", "/etc/passwd"):
        missing = await harness.run(harness.request(session_id, user_id, "read_workspace_file", {"file": ref}))
        assert missing.error.startswith("not_found")
    _, stranger = await harness.new_session()
    foreign = await harness.run(harness.request(session_id, stranger, "read_workspace_file", {"file": uri}))
    assert foreign.error == "not_found: No such workspace file."


async def test_file_size_limit(harness, settings):
    session_id, user_id = await harness.new_session()
    big = "x" * (settings.workspace_max_file_bytes + 1)
    result = await harness.run(harness.request(session_id, user_id, "write_workspace_file", {"name": "big.txt",
                                                                                             "content": big}))
    assert result.error.startswith("too_large")


async def test_large_output_is_stored_and_truncated(settings):
    harness = ToolHarness(settings.model_copy(update={"tool_output_max_chars": 1000, "bash_output_max_chars": 5000}))
    session_id, user_id = await harness.new_session()
    result = await harness.run(harness.request(session_id, user_id, "bash_exec",
                                               {"command": "head -c 4000 /dev/zero | tr '\\0' 'y'"}))
    assert result.output["truncated"] is True and len(result.model_content()) <= 1000
    async with harness.sessions() as db:
        record = await owned_file(db, user_id, result.output["full_output"])
    assert "y" * 4000 in (await file_bytes(harness.services.storage, record)).decode()


async def test_a_retried_call_is_charged_once(harness):
    session_id, user_id = await harness.new_session(credits_granted=10)
    request = harness.request(session_id, user_id, "bash_exec", {"command": "true"}, call_id="call_once")
    await harness.run(request)
    await harness.run(request)  # what Temporal does when the first attempt's completion was lost
    assert await harness.balance(user_id) == 9


async def test_too_few_credits_refuses_before_running(harness, settings):
    session_id, user_id = await harness.new_session(credits_granted=0)
    result = await harness.run(harness.request(session_id, user_id, "bash_exec", {"command": "touch ran"}))
    assert result.error.startswith("insufficient_credits")
    ran = await harness.run(harness.request(session_id, user_id, "list_workspace_files", {}))
    assert ran.error is None
    assert not (harness.services.storage.session_folder(session_id) / "ran").exists()


async def test_cancelled_after_output_is_charged_once(harness):
    session_id, user_id = await harness.new_session(credits_granted=20)
    request = harness.request(session_id, user_id, "paid", {}, call_id="call_paid")
    environment = ActivityEnvironment()
    extra_tools.produced.clear()
    task = asyncio.create_task(harness.run(request, environment))
    await extra_tools.produced.wait()
    environment.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert await harness.balance(user_id) == 15
    await harness.run(request)  # retried after the cancellation: no second charge
    assert await harness.balance(user_id) == 15


async def running_balances(settings, user_id: str) -> list[int]:
    """The balance after each ledger entry, in the order they were written."""
    rows = await db_rows(settings.database_url, "SELECT sum(amount) OVER (ORDER BY id) AS balance FROM credit_ledger "
                                                "WHERE user_id = :u ORDER BY id", u=user_id)
    return [row["balance"] for row in rows]


async def test_concurrent_paid_calls_on_a_balance_covering_one_run_once(harness, settings):
    session_id, user_id = await harness.new_session(credits_granted=5)
    results = await asyncio.gather(*(harness.run(harness.request(session_id, user_id, "paid", {}))
                                     for _ in range(4)))
    assert [r.output for r in results].count("output") == 1
    refused = [r.error for r in results if r.error]
    assert len(refused) == 3 and all(e.startswith("insufficient_credits") for e in refused)
    assert await running_balances(settings, user_id) == [5, 0]


async def test_a_paid_tool_without_output_gets_its_reservation_back(harness, settings):
    session_id, user_id = await harness.new_session(credits_granted=5)
    request = harness.request(session_id, user_id, "paid_failing", {}, call_id="call_paid_fails")
    result = await harness.run(request)
    assert result.error.startswith("tool_failed")
    await harness.run(request)  # a retry reserves nothing new and refunds nothing twice
    assert await running_balances(settings, user_id) == [5, 0, 5]
    keys = await db_rows(settings.database_url, "SELECT idempotency_key FROM credit_ledger WHERE user_id = :u "
                                                "ORDER BY id", u=user_id)
    assert [k["idempotency_key"] for k in keys][1:] == ["tool:turn-1:call_paid_fails",
                                                        "tool:turn-1:call_paid_fails:refund"]


async def test_a_paid_call_timed_out_or_stopped_before_output_is_refunded(settings):
    harness = ToolHarness(settings.model_copy(update={"tool_timeout_seconds": 1}))
    session_id, user_id = await harness.new_session(credits_granted=5)
    timed_out = await harness.run(harness.request(session_id, user_id, "paid_nap", {"seconds": 5}))
    assert timed_out.error.startswith("tool_timeout")
    environment = ActivityEnvironment()
    stopped = asyncio.create_task(harness.run(harness.request(session_id, user_id, "paid_nap", {"seconds": 5}),
                                              environment))
    await asyncio.sleep(0.3)
    environment.cancel()
    await asyncio.gather(stopped, return_exceptions=True)
    assert await running_balances(settings, user_id) == [5, 0, 5, 0, 5]


async def test_no_tool_blocks_longer_than_the_cap_even_one_that_ignores_cancellation(settings):
    harness = ToolHarness(settings.model_copy(update={"tool_timeout_seconds": 1}))
    session_id, user_id = await harness.new_session()
    started = time.perf_counter()
    result = await harness.run(harness.request(session_id, user_id, "stubborn_nap", {"seconds": 8}))
    capped = time.perf_counter() - started
    # Stop (the activity cancelled) does not wait for it either.
    environment = ActivityEnvironment()
    task = asyncio.create_task(harness.run(harness.request(session_id, user_id, "stubborn_nap", {"seconds": 8}),
                                           environment))
    await asyncio.sleep(0.2)
    started = time.perf_counter()
    environment.cancel()
    await asyncio.gather(task, return_exceptions=True)
    cancelled = time.perf_counter() - started
    assert capped < 3 and result.error.startswith("tool_timeout") and "run_sub_session" in result.error
    assert cancelled < 1


async def test_a_forbidden_tool_is_permission_denied_whatever_its_kind(harness):
    session_id, user_id = await harness.new_session()
    for name, arguments in (("run_sub_session", {"prompt": "escape"}),
                            ("get_sub_session_result", {"sub_session_id": "x"})):
        result = await harness.run(harness.request(session_id, user_id, name, arguments, allowed=["get_current_time"]))
        assert result.error == f"permission_denied: This session may not use '{name}'.", name


async def test_a_large_output_gets_a_safe_name_and_is_stored_once_per_call(settings):
    harness = ToolHarness(settings.model_copy(update={"tool_output_max_chars": 1000, "bash_output_max_chars": 5000}))
    session_id, user_id = await harness.new_session()
    # Provider tool-call ids are not file names (this shape is Kimi's).
    request = harness.request(session_id, user_id, "bash_exec", {"command": "head -c 4000 /dev/zero | tr '\\0' 'y'"},
                              call_id="functions.bash_exec:0")
    first = await harness.run(request)
    again = await harness.run(request)  # a retried activity
    assert first.error is None and first.output["truncated"] is True
    assert again.output["full_output"] == first.output["full_output"]
    rows = await db_rows(settings.database_url, "SELECT id, name FROM workspace_files WHERE user_id = :u", u=user_id)
    assert len(rows) == 1 and rows[0]["name"].startswith("bash_exec-output-")


async def test_calls_past_the_round_limit_are_refused_and_the_turn_goes_on(http, user, scripted, stack, settings):
    from local.model import chunks
    from tests.support.helpers import marker, new_session, send, session_rows
    from tests.support.scripted_model import Stream, text_reply
    from tests.support.sse_client import assert_well_formed, parts

    tag, count = marker(), settings.max_tool_calls_per_round + 2
    calls = [piece for i in range(count) for piece in (
        chunks.tool_call(i, "", call_id=f"call_many_{i}", name="get_current_time"),
        chunks.tool_call(i, '{"timezone": "UTC"}'))]
    scripted.script(tag, Stream([*calls, chunks.finish("tool_calls"), chunks.usage(1, 1, 0.0001)]),
                    text_reply("Fewer next time."))
    session_id = await new_session(http, user)
    events = await send(http, user, session_id, f"many {tag}")
    assert_well_formed(events)
    refused = [p for p in parts(events) if p["type"] == "tool-output-error"]
    ran = [p for p in parts(events) if p["type"] == "tool-output-available"]
    assert len(ran) == settings.max_tool_calls_per_round and len(refused) == 2
    assert all(p["errorText"].startswith("too_many_tool_calls") for p in refused)
    rows = await session_rows(stack.database_url, session_id)
    assert [r["role"] for r in rows].count("tool") == count and rows[-1]["content"] == "Fewer next time."
