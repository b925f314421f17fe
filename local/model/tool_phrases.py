"""Which tool the offline model calls for a message, so a person trying the system without a
model key can watch every tool run. The phrases (the README lists them):

- a command in backticks, "run `ls -la`"            -> bash_exec
- "save <text> as <name>" or "write <text> to <name>" -> write_workspace_file
- "read <name>" or "read workspace://<id>"          -> read_workspace_file
- "list files" / "list my files"                    -> list_workspace_files
- "delegate: <task>"                                -> run_sub_session
- "check sub-session <id>"                          -> get_sub_session_result
- "read the building guide"                         -> get_agent_building_guide
- "create an agent called <name>"                   -> create_agent
- "add a node <block id> [to agent <id>]"           -> edit_agent
- "show / validate / fix the agent [<id>]"          -> get_agent / validate_agent_graph / fix_agent_graph
- anything that mentions the time                   -> get_current_time

The agent tools act on the agent named by id, or in the builder's chat (whose messages start with
a `<builder_context>` snapshot, which is never read as a request) on the agent open there.
"""

import hashlib
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
BUILDER_CONTEXT = re.compile(r"^<builder_context>\n.*?</builder_context>\n\n", re.DOTALL)
GUIDE = re.compile(r"\b(?:read|show|get)\s+(?:me\s+)?the\s+(?:agent[- ])?(?:building\s+)?guide\b", re.IGNORECASE)
CREATE_AGENT = re.compile(r"\bcreate\s+an?\s+agent\s+(?:called|named)\s+(?P<name>\"[^\"]+\"|'[^']+'|[^\n.!?]+)",
                          re.IGNORECASE)
AGENT_ID = r"(?:\s+(?:to\s+|of\s+)?(?:the\s+|my\s+)?(?:agent\s+)?(?P<agent>[0-9a-fA-F-]{36}))?"
ADD_NODE = re.compile(r"\badd\s+an?\s+node\s+(?:running\s+|of\s+block\s+)?(?!to\b)(?P<block>[A-Za-z0-9_.:-]+)" + AGENT_ID,
                      re.IGNORECASE)
AGENT_ACTION = re.compile(r"\b(?P<action>show|validate|check|fix)\s+(?:the\s+|my\s+)?agent\b" + AGENT_ID,
                          re.IGNORECASE)
AGENT_ACTIONS = {"show": "get_agent", "validate": "validate_agent_graph", "check": "validate_agent_graph",
                 "fix": "fix_agent_graph"}
GUIDE_TOOL = "get_agent_building_guide"
# What the guide gate holds back until the guide was read (tools/agent_guide.py).
NEEDS_GUIDE = {"create_agent", "edit_agent", "validate_agent_graph", "fix_agent_graph"}


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


def without_builder_context(message: str) -> str:
    """The message as the user wrote it: a builder chat's leading snapshot is the server's, not a request."""
    return BUILDER_CONTEXT.sub("", message, count=1)


def _node_id(block: str, message: str) -> str:
    """A node id of its own for each message (the same message, the same id)."""
    return f"{re.sub(r'[^A-Za-z0-9_-]', '_', block)[:40]}-{hashlib.sha256(message.encode()).hexdigest()[:6]}"


def _agent_call(message: str, call) -> Optional[dict]:
    if (match := GUIDE.search(message)) and (found := call(GUIDE_TOOL, {})):
        return found
    if (match := CREATE_AGENT.search(message)) and (found := call("create_agent",
                                                                  {"name": _unquote(match["name"].strip())})):
        return found
    if match := ADD_NODE.search(message):
        return call("edit_agent", {"agent_id": match["agent"] or "",
                                   "add_nodes": [{"id": _node_id(match["block"], message), "block_id": match["block"]}]})
    if match := AGENT_ACTION.search(message):
        return call(AGENT_ACTIONS[match["action"].lower()], {"agent_id": match["agent"] or ""})
    return None


def tool_call_for(message: str, offered: set[str]) -> Optional[dict]:
    """The call (`{"name", "arguments"}`) a message asks for among the offered tools, or None."""
    def call(name: str, arguments: dict) -> Optional[dict]:
        return {"name": name, "arguments": json.dumps(arguments)} if name in offered else None

    message = without_builder_context(message)
    if found := _agent_call(message, call):
        return found

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
