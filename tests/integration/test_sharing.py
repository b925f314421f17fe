"""Public sharing on the real stack: a shared session shows its conversation and exactly the
files it refers to; the token rotates, ends, and dies with the session; malformed ids are 422
and every miss is one byte-identical 404, whatever an attacker puts in the path."""

import json
import string
import uuid
from pathlib import Path
from urllib.parse import quote

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from database import session_maker
from tests.support.helpers import db_rows, marker, new_session, send
from tests.support.scripted_model import text_reply, tool_call_reply
from tests.support.servers import api_with
from tests.support.stripe_keys import FRONTEND_ORIGIN
from tests.support.users import make_user
from workspace.files import save_file
from workspace.storage import DiskStorage

PUBLIC = "/api/public/shared"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
# The seed's well-formed ids: a token that is no share, a file id of the right shape that is no file.
VALID_TOKEN = "550e8400-e29b-41d4-a716-446655440000"
VALID_FILE_ID = "6ba7b8109dad11d180b400c04fd430c8"
NOT_FOUND_BODY = b'{"error":{"code":"not_found","message":"Not Found"}}'


async def store_file(settings, user_id: str, session_id: str | None, name: str, data: bytes) -> str:
    async with session_maker(settings.database_url)() as db:
        record = await save_file(db, DiskStorage(Path(settings.workspace_dir)), user_id, session_id, name, data,
                                 max_bytes=1 << 20)
    return record.id


async def add_rows(database_url: str, session_id: str, *rows: tuple[str, str]) -> None:
    """Rows a turn writes that the share must not show (reasoning, system markers)."""
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as connection:
            for role, content in rows:
                await connection.execute(text(
                    "INSERT INTO chat_messages (session_id, sequence, role, content, created_at) VALUES "
                    "(:s, (SELECT COALESCE(MAX(sequence), 0) + 1 FROM chat_messages WHERE session_id = :s2), "
                    ":role, :content, now())"), {"s": session_id, "s2": session_id, "role": role, "content": content})
    finally:
        await engine.dispose()


async def share(http: httpx.AsyncClient, user, session_id: str) -> dict:
    response = await http.post(f"/api/chat/sessions/{session_id}/share", headers=user.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def shared_conversation(http, user, scripted, settings, stack) -> dict:
    """A session that refers to its chart (in the answer, with a #mime suffix), its notes (in a tool
    call and its result), a nested reference (JSON text inside JSON text in a user message), a
    reference only reasoning made, and a file of another user; the owner has one file it never named."""
    session_id = await new_session(http, user)
    files = {
        "chart": await store_file(settings, user.id, session_id, "chart.png", PNG),
        "notes": await store_file(settings, user.id, session_id, "notes.md", b"# Findings\nAll good."),
        "nested": await store_file(settings, user.id, None, "nested.txt", b"found deep inside"),
        "private": await store_file(settings, user.id, session_id, "private.txt", b"never named"),
        "thought": await store_file(settings, user.id, session_id, "thought.txt", b"only reasoned about"),
        "foreign": await store_file(settings, make_user(settings).id, None, "theirs.txt", b"someone else's"),
    }
    tag = marker()
    scripted.script(tag, tool_call_reply("read_workspace_file", {"file": f"workspace://{files['notes']}"}),
                    text_reply(f"Here is the chart: workspace://{files['chart']}#image/png "
                               f"(and workspace://{files['foreign']}, which is not mine)."))
    await send(http, user, session_id, f"Summarise my notes {tag}")
    inner = '{"uri": "workspace:\\/\\/' + files["nested"] + '"}'  # JSON text that escapes its slashes
    attachment = json.dumps({"attachments": [{"meta": inner}]})  # inside JSON text again
    await send(http, user, session_id, attachment)
    await add_rows(stack.database_url, session_id, ("reasoning", f"maybe workspace://{files['thought']}"),
                   ("system", "stopped by user"))
    return {"session_id": session_id, "files": files, **await share(http, user, session_id)}


async def download(http, token: str, file_id: str) -> httpx.Response:
    return await http.get(f"{PUBLIC}/{token}/files/{file_id}/download")


async def test_a_share_shows_the_conversation_and_exactly_the_files_it_names(http, user, scripted, settings, stack):
    shared = await shared_conversation(http, user, scripted, settings, stack)
    token, files = shared["share_token"], shared["files"]
    assert shared["share_url"] == f"{FRONTEND_ORIGIN}/share/{token}"
    assert str(uuid.UUID(token, version=4)) == token and shared["file_count"] == 3

    transcript = await http.get(f"{PUBLIC}/{token}")  # no Authorization: public
    assert transcript.status_code == 200, transcript.text
    assert transcript.headers["cache-control"] == "no-store"
    body = transcript.json()
    assert {m["role"] for m in body["messages"]} == {"user", "assistant", "tool"}
    assert [m["role"] for m in body["messages"]][:4] == ["user", "assistant", "tool", "assistant"]
    calls = body["messages"][1]["tool_calls"]
    assert calls[0]["name"] == "read_workspace_file"
    assert body["messages"][2]["tool_call_id"] == calls[0]["id"] and "# Findings" in body["messages"][2]["content"]
    assert user.id not in transcript.text and "stopped by user" not in transcript.text
    assert files["thought"] not in transcript.text  # reasoning is not shared
    assert {f["id"] for f in body["files"]} == {files["chart"], files["notes"], files["nested"]}
    chart = next(f for f in body["files"] if f["id"] == files["chart"])
    assert chart["content_type"] == "image/png"
    assert chart["download_path"] == f"{PUBLIC}/{token}/files/{chart['id']}/download"

    image = await download(http, token, files["chart"])
    assert image.status_code == 200 and image.content == PNG
    assert image.headers["content-type"] == "image/png"
    assert image.headers["content-length"] == str(len(PNG))
    assert image.headers["content-disposition"] == 'inline; filename="chart.png"'
    assert image.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in image.headers["content-security-policy"]
    notes = await download(http, token, files["notes"])
    assert notes.content == b"# Findings\nAll good." and notes.headers["content-type"].startswith("text/markdown")
    assert (await download(http, token, files["nested"])).content == b"found deep inside"

    # Named nowhere (the owner's own), named only in reasoning, or another user's: one and the same 404.
    misses = [await download(http, token, files[name]) for name in ("private", "thought", "foreign")]
    misses += [await download(http, VALID_TOKEN, files["chart"]), await download(http, token, VALID_FILE_ID),
               await http.get(f"{PUBLIC}/{VALID_TOKEN}")]
    assert [m.status_code for m in misses] == [404] * 6
    assert {m.content for m in misses} == {NOT_FOUND_BODY}
    per_request = ("date", "x-request-id")  # the only headers that differ: when, and which request
    assert len({tuple(sorted((k, v) for k, v in m.headers.items() if k not in per_request)) for m in misses}) == 1


async def test_sharing_again_rotates_the_token_and_replaces_its_file_list(http, user, scripted, settings, stack):
    shared = await shared_conversation(http, user, scripted, settings, stack)
    old_token, chart = shared["share_token"], shared["files"]["chart"]
    later = await store_file(settings, user.id, shared["session_id"], "later.txt", b"named after the first share")
    assert (await download(http, old_token, chart)).status_code == 200
    await send(http, user, shared["session_id"], f"also workspace://{later}")
    assert (await download(http, old_token, later)).status_code == 404  # the share shows what it showed

    rotated = await share(http, user, shared["session_id"])
    new_token = rotated["share_token"]
    assert new_token != old_token and rotated["file_count"] == 4
    assert (await http.get(f"{PUBLIC}/{old_token}")).status_code == 404
    assert (await download(http, old_token, chart)).status_code == 404
    assert await db_rows(stack.database_url, "SELECT file_id FROM shared_session_files WHERE share_token = :t",
                         t=old_token) == []
    assert (await download(http, new_token, chart)).content == PNG
    assert (await download(http, new_token, later)).content == b"named after the first share"
    listed = await db_rows(stack.database_url, "SELECT share_token, file_id FROM shared_session_files "
                                               "WHERE session_id = :s", s=shared["session_id"])
    assert {r["share_token"] for r in listed} == {new_token} and len(listed) == 4


async def test_ending_a_share_and_deleting_the_session_remove_it(http, user, scripted, settings, stack):
    shared = await shared_conversation(http, user, scripted, settings, stack)
    token, session_id = shared["share_token"], shared["session_id"]
    stranger = make_user(settings)
    for method in ("POST", "DELETE"):  # someone else's session answers like a missing one
        foreign = await http.request(method, f"/api/chat/sessions/{session_id}/share", headers=stranger.headers)
        missing = await http.request(method, f"/api/chat/sessions/{uuid.uuid4()}/share", headers=user.headers)
        assert foreign.status_code == missing.status_code == 404 and foreign.json() == missing.json()
    assert (await http.get(f"{PUBLIC}/{token}")).status_code == 200

    assert (await http.delete(f"/api/chat/sessions/{session_id}/share", headers=user.headers)).status_code == 204
    assert (await http.get(f"{PUBLIC}/{token}")).content == NOT_FOUND_BODY
    assert (await download(http, token, shared["files"]["chart"])).content == NOT_FOUND_BODY
    assert (await http.delete(f"/api/chat/sessions/{session_id}/share", headers=user.headers)).status_code == 204

    token = (await share(http, user, session_id))["share_token"]
    assert (await http.delete(f"/api/chat/sessions/{session_id}", headers=user.headers)).status_code == 204
    assert (await http.get(f"{PUBLIC}/{token}")).content == NOT_FOUND_BODY
    assert await db_rows(stack.database_url, "SELECT 1 FROM session_shares WHERE share_token = :t", t=token) == []
    assert await db_rows(stack.database_url, "SELECT 1 FROM shared_session_files WHERE session_id = :s",
                         s=session_id) == []


async def test_a_listed_file_whose_bytes_are_gone_is_the_same_404(http, user, settings):
    session_id = await new_session(http, user)
    file_id = await store_file(settings, user.id, session_id, "gone.txt", b"soon gone")
    await send(http, user, session_id, f"keep workspace://{file_id}")
    token = (await share(http, user, session_id))["share_token"]
    assert (await download(http, token, file_id)).status_code == 200
    (Path(settings.workspace_dir) / "sessions" / session_id / "gone.txt").unlink()
    gone = await download(http, token, file_id)
    assert gone.status_code == 404 and gone.content == NOT_FOUND_BODY


async def test_malformed_tokens_and_ids_are_422(http):
    for path in (f"{PUBLIC}/not-a-uuid", f"{PUBLIC}/not-a-uuid/files/{VALID_FILE_ID}/download",
                 f"{PUBLIC}/{VALID_TOKEN}/files/not-a-file-id/download", f"{PUBLIC}/{VALID_TOKEN.upper()}",
                 f"{PUBLIC}/{VALID_TOKEN}/files/{VALID_FILE_ID.upper()}/download"):
        response = await http.get(path)
        assert response.status_code == 422, path
        assert response.json()["error"]["code"] == "invalid_request"


ADVERSARIAL = [
    "..", "...", "../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "..\\..\\windows",
    "%252e%252e%252f", "' OR '1'='1", "1; DROP TABLE session_shares;--", "550e8400' OR 1=1 --",
    "\u0455\u0435\u0441ret",  # Cyrillic look-alikes of "secret"
    VALID_TOKEN.replace("a", "\u0430"), VALID_TOKEN.replace("0", "\uff10"), VALID_TOKEN.replace("-", "\u2010"),
    VALID_TOKEN + "%00", "%00" + VALID_TOKEN, VALID_TOKEN + "%0A", VALID_TOKEN + "%0d%0aX-Injected:%20true",
    VALID_TOKEN + " ", VALID_TOKEN + "/..", "http:%2F%2F169.254.169.254%2Flatest", "file:%2F%2F%2Fetc%2Fpasswd",
    "__proto__", "constructor", "%7B%7B7*7%7D%7D", "<script>alert(1)</script>", "*", "%", "a" * 4000,
]


async def get_raw(client: httpx.AsyncClient, path: str) -> httpx.Response:
    """GET the path as written: no dot segments removed on the way (httpx would), only what HTTP
    cannot carry (spaces, non-ASCII) percent-encoded."""
    return await client.get("/", extensions={"target": quote(path, safe=string.punctuation).encode()})


async def test_adversarial_inputs_never_reach_anything(http, user, scripted, settings, stack):
    shared = await shared_conversation(http, user, scripted, settings, stack)
    token, chart = shared["share_token"], shared["files"]["chart"]
    paths = []
    for attack in ADVERSARIAL:
        paths += [f"{PUBLIC}/{attack}", f"{PUBLIC}/{attack}/files/{chart}/download",
                  f"{PUBLIC}/{token}/files/{attack}/download", f"{PUBLIC}/{token}/files/{chart}{attack}/download",
                  f"{PUBLIC}/{token}{attack}", f"{PUBLIC}/{token}/files/{attack}"]
    async with api_with(settings, public_rate_limit=0) as public:  # hundreds of requests, none rate limited
        for path in paths:
            response = await get_raw(public, path)
            assert response.status_code in (404, 422), (path, response.status_code)
            assert PNG not in response.content and b"Findings" not in response.content
            if response.status_code == 404:
                assert response.content == NOT_FOUND_BODY, path
        assert (await public.get(f"{PUBLIC}/{token}/files/{chart}/download")).content == PNG  # still served


async def test_public_routes_are_rate_limited_per_client_address(settings):
    async with api_with(settings, public_rate_limit=3, public_rate_window_seconds=3600) as public:
        answers = [await public.get(f"{PUBLIC}/{VALID_TOKEN}") for _ in range(3)]
        assert [a.status_code for a in answers] == [404] * 3
        for path in (f"{PUBLIC}/{VALID_TOKEN}", f"{PUBLIC}/not-a-uuid",  # malformed guesses count too
                     f"{PUBLIC}/{VALID_TOKEN}/files/{VALID_FILE_ID}/download"):
            limited = await public.get(path)
            assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limited"
            assert int(limited.headers["retry-after"]) > 0


async def test_workspace_files_keep_their_detected_type(http, user, scripted):
    tag = marker()
    scripted.script(tag, tool_call_reply("write_workspace_file", {"name": "page.html", "content": "<p>hi</p>"}),
                    text_reply("Saved."))
    session_id = await new_session(http, user)
    await send(http, user, session_id, f"save a page {tag}")
    listed = (await http.get("/api/workspace/files", headers=user.headers)).json()
    assert [(f["name"], f["content_type"]) for f in listed] == [("page.html", "text/html")]
    tool_row = next(m for m in (await http.get(f"/api/chat/sessions/{session_id}", headers=user.headers)
                                ).json()["messages"] if m["role"] == "tool")
    assert json.loads(tool_row["content"])["content_type"] == "text/html"
