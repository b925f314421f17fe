"""Session resources: list (paginated), read, delete; turns visible to operators in Temporal."""

import asyncio

from tests.support.helpers import marker, new_session, send
from tests.support.scripted_model import text_reply
from workflows.copilot_turn import turn_workflow_id


async def test_list_is_paginated_and_only_shows_the_owners_sessions(http, user, settings):
    from tests.support.users import make_user

    ids = [await new_session(http, user) for _ in range(5)]
    other = make_user(settings)
    await new_session(http, other)

    first = (await http.get("/api/chat/sessions?limit=2", headers=user.headers)).json()
    second = (await http.get("/api/chat/sessions?limit=2&offset=2", headers=user.headers)).json()
    third = (await http.get("/api/chat/sessions?limit=2&offset=4", headers=user.headers)).json()
    listed = [s["id"] for page in (first, second, third) for s in page["sessions"]]
    assert sorted(listed) == sorted(ids) and first["total"] == 5
    bad = await http.get("/api/chat/sessions?limit=1000", headers=user.headers)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"


async def test_delete_removes_the_session_and_its_messages(http, user, scripted):
    tag = marker()
    scripted.script(tag, text_reply("Bye."))
    session_id = await new_session(http, user)
    await send(http, user, session_id, f"hello {tag}")

    assert (await http.delete(f"/api/chat/sessions/{session_id}", headers=user.headers)).status_code == 204
    assert (await http.get(f"/api/chat/sessions/{session_id}", headers=user.headers)).status_code == 404


async def test_turn_is_a_workflow_searchable_by_user_and_session(http, user, scripted, temporal_client):
    tag = marker()
    scripted.script(tag, text_reply("Visible to operators."))
    session_id = await new_session(http, user)
    events = await send(http, user, session_id, f"hello {tag}")

    query = f"CopilotSessionId = '{session_id}' AND CopilotUserId = '{user.id}' AND CopilotKind = 'turn'"
    found = []
    for _ in range(50):  # visibility is eventually consistent
        found = [w async for w in temporal_client.list_workflows(query)]
        if found and found[0].search_attributes.get("CopilotTurnStatus") == ["completed"]:
            break
        await asyncio.sleep(0.1)
    assert [w.id for w in found] == [turn_workflow_id(session_id)]
    assert found[0].run_id == events[0].part["messageId"]
    description = await temporal_client.get_workflow_handle(found[0].id).describe()
    assert await description.memo_value("title") == f"hello {tag}"


async def test_health_reports_every_dependency(http):
    body = (await http.get("/health")).json()
    assert body == {"status": "ok", "checks": {"postgres": "ok", "redis": "ok", "temporal": "ok"}}


async def test_a_token_valid_for_too_long_is_refused(http, settings):
    from api.auth import issue_token

    forever = issue_token(settings.jwt_secret, "long-lived-user", ttl_seconds=100 * 365 * 24 * 3600)
    response = await http.get("/api/chat/sessions", headers={"Authorization": f"Bearer {forever}"})
    assert response.status_code == 401 and "longer" in response.json()["error"]["message"]
    fine = issue_token(settings.jwt_secret, "long-lived-user")
    assert (await http.get("/api/chat/sessions", headers={"Authorization": f"Bearer {fine}"})).status_code == 200
