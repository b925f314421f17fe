"""The offline model calls every tool for the phrases the README documents, and only tools offered."""

import json

import pytest

from local.model.tool_phrases import tool_call_for

EVERY_TOOL = {"bash_exec", "write_workspace_file", "read_workspace_file", "list_workspace_files", "run_sub_session",
              "get_sub_session_result", "get_current_time"}


@pytest.mark.parametrize(("message", "name", "arguments"), [
    ("run `ls -la`", "bash_exec", {"command": "ls -la", "timeout": 30}),
    ('save "print(6*7)" as script.py', "write_workspace_file", {"name": "script.py", "content": "print(6*7)"}),
    ("write hello world to notes.txt", "write_workspace_file", {"name": "notes.txt", "content": "hello world"}),
    ("read notes.txt", "read_workspace_file", {"file": "notes.txt"}),
    ("list my files", "list_workspace_files", {}),
    ("delegate: summarise the plan", "run_sub_session", {"prompt": "summarise the plan", "wait_for_result": 30}),
    ("check sub-session 3f2a1b4c-1111-2222-3333-444455556666", "get_sub_session_result",
     {"sub_session_id": "3f2a1b4c-1111-2222-3333-444455556666", "wait_if_running": 5}),
    ("What time is it?", "get_current_time", {"timezone": "UTC"}),
])
def test_each_phrase_calls_its_tool(message, name, arguments):
    call = tool_call_for(message, EVERY_TOOL)
    assert call["name"] == name and json.loads(call["arguments"]) == arguments


def test_a_tool_that_is_not_offered_is_never_called():
    assert tool_call_for("run `ls`", EVERY_TOOL - {"bash_exec"}) is None
    assert tool_call_for("Explain durable workflows", EVERY_TOOL) is None
