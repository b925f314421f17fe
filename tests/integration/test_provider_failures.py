"""The model provider fails: rounds are retried with backoff; past the budget the client gets an
`error` part, the session is idle again and the user's message is kept."""

import pytest

from local.model import chunks
from tests.support.helpers import marker, new_session, send, session_rows
from tests.support.scripted_model import Fail, Stream, text_reply
from tests.support.sse_client import assembled_text, assert_well_formed, part_types, parts


@pytest.mark.parametrize("failure", [
    Fail(500), Fail(429),
    Stream([chunks.text("Half an ans"), chunks.text("wer that brea"), chunks.text("ks")], break_after=2),
], ids=["http-500", "http-429", "broken-stream"])
async def test_round_is_retried_after_a_provider_failure(http, user, scripted, stack, failure):
    tag = marker()
    scripted.script(tag, failure, text_reply("Recovered answer."))
    session_id = await new_session(http, user)

    events = await send(http, user, session_id, f"Hi {tag}")

    assert_well_formed(events)
    assert len(scripted.requests_for(tag)) == 2
    rows = await session_rows(stack.database_url, session_id)
    assert [(r["role"], r["content"]) for r in rows] == [("user", f"Hi {tag}"), ("assistant", "Recovered answer.")]
    if isinstance(failure, Stream):
        # The broken attempt's text was closed and flagged for the UI to discard.
        assert "data-round-retry" in part_types(events)
    assert assembled_text(events).endswith("Recovered answer.")


async def test_error_part_after_the_retry_budget_and_the_session_is_idle(http, user, scripted, stack):
    tag = marker()
    scripted.script(tag, Fail(500))
    session_id = await new_session(http, user)

    events = await send(http, user, session_id, f"Hi {tag}")

    assert_well_formed(events)
    errors = [p for p in parts(events) if p["type"] == "error"]
    assert len(errors) == 1 and "HTTP 500" in errors[0]["errorText"] and "try again" in errors[0]["errorText"]
    assert len(scripted.requests_for(tag)) == 3  # the configured attempt budget
    detail = (await http.get(f"/api/chat/sessions/{session_id}", headers=user.headers)).json()
    assert detail["active_turn"] is None
    rows = await session_rows(stack.database_url, session_id)
    assert [r["role"] for r in rows] == ["user", "system"]

    # Idle again: the next message starts a fresh turn that succeeds.
    scripted.script(tag, text_reply("Back online."))
    events = await send(http, user, session_id, f"Again {tag}")
    assert assembled_text(events) == "Back online."


async def test_a_client_error_from_the_provider_is_not_retried(http, user, scripted):
    tag = marker()
    scripted.script(tag, Fail(400))
    session_id = await new_session(http, user)

    events = await send(http, user, session_id, f"Hi {tag}")

    assert "HTTP 400" in next(p for p in parts(events) if p["type"] == "error")["errorText"]
    assert len(scripted.requests_for(tag)) == 1
