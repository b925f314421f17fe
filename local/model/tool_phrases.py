"""Which tool the offline model calls for a message, so a person trying the system without a
model key can watch every tool run. The phrases (the README lists them):

- a command in backticks, "run `ls -la`"            -> bash_exec
- "save <text> as <name>" or "write <text> to <name>" -> write_workspace_file
- "read <name>" or "read workspace://<id>"          -> read_workspace_file
- "list files" / "list my files"                    -> list_workspace_files
- "delegate: <task>"                                -> run_sub_session
- "check sub-session <id>"                          -> get_sub_session_result
- anything that mentions the time                   -> get_current_time
"""

import json
import re
from typing import Optional

BACKTICKS = re.compile(r"`([^`]+)`")
SAVE = re.compile(r"\b(?:save|write)\s+(?P<content>.+?)\s+(?:as|to|into|in)\s+(?:a\s+)?(?:file\s+)?"
                  r"(?P<name>[A-Za-z0-9][A-Za-z0-9._-]{0,127})\s*[.!?]?\s*$", re.IGNORECASE | re.DOTALL)
READ = re.compile(r"\bread\s+(?:the\s+)?(?:file\s+)?(?P<file>workspace://[0-9a-f]{32}|[A-Za-z0-9][A-Za-z0-9._-]*\.\w+)",
                  re.IGNORECASE)
LIST = re.compile(r"\blist\s+(?:my\s+|the\s+)?files\b", re.IGNORECASE)
DELEGATE = re.compile(r"\bdelegate:\s*(?P<task>.+)", re.IGNORECASE | re.DOTALL)
CHECK_SUB = re.compile(r"\bcheck\s+sub-?session\s+(?P<id>[0-9a-fA-F-]{8,})", re.IGNORECASE)


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


def tool_call_for(message: str, offered: set[str]) -> Optional[dict]:
    """The call (`{"name", "arguments"}`) a message asks for among the offered tools, or None."""
    def call(name: str, arguments: dict) -> Optional[dict]:
        return {"name": name, "arguments": json.dumps(arguments)} if name in offered else None

    if (match := CHECK_SUB.search(message)) and (found := call("get_sub_session_result",
                                                               {"sub_session_id": match["id"], "wait_if_running": 5})):
        return found
    if (match := DELEGATE.search(message)) and (found := call("run_sub_session",
                                                              {"prompt": match["task"].strip(), "wait_for_result": 30})):
        return found
    if (match := BACKTICKS.search(message)) and (found := call("bash_exec", {"command": match[1], "timeout": 30})):
        return found
    if (match := SAVE.search(message)) and (found := call("write_workspace_file",
                                                          {"name": match["name"], "content": _unquote(match["content"])})):
        return found
    if (match := READ.search(message)) and (found := call("read_workspace_file", {"file": match["file"]})):
        return found
    if LIST.search(message) and (found := call("list_workspace_files", {})):
        return found
    if "time" in message.lower():
        return call("get_current_time", {"timezone": "UTC"})
    return None
