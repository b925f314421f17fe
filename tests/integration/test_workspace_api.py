"""The owner lists and downloads workspace files; anyone else gets the same 404 as for nothing."""

from tests.support.tool_harness import ToolHarness
from tests.support.users import make_user


async def test_owner_lists_and_downloads_files(http, settings):
    harness = ToolHarness(settings)
    user = make_user(settings)
    session_id, _ = await harness.new_session(user.id)
    written = await harness.run(harness.request(session_id, user.id, "write_workspace_file",
                                                {"name": "report.md", "content": "# Findings"}))
    file_id = written.output["uri"].removeprefix("workspace://")

    listed = (await http.get("/api/workspace/files", headers=user.headers)).json()
    assert [(f["id"], f["name"], f["uri"]) for f in listed] == [(file_id, "report.md", f"workspace://{file_id}")]
    download = await http.get(f"/api/workspace/files/{file_id}/content", headers=user.headers)
    assert download.status_code == 200 and download.text == "# Findings"
    assert 'filename="report.md"' in download.headers["content-disposition"]

    stranger = make_user(settings)
    assert (await http.get("/api/workspace/files", headers=stranger.headers)).json() == []
    foreign = await http.get(f"/api/workspace/files/{file_id}/content", headers=stranger.headers)
    missing = await http.get(f"/api/workspace/files/{'0' * 32}/content", headers=user.headers)
    traversal = await http.get("/api/workspace/files/..%2F..%2Fetc%2Fpasswd/content", headers=user.headers)
    assert foreign.status_code == missing.status_code == traversal.status_code == 404
    assert foreign.json() == missing.json() == {"error": {"code": "not_found", "message": "No such file."}}
    assert traversal.json()["error"]["code"] == "not_found"
