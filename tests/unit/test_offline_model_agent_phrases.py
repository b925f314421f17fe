"""The offline model drives the agent-building tools: the phrases, the guide first where the gate needs
it (and then the tool asked for), and a builder chat's snapshot never read as a request."""

import json

import pytest

from local.model.server import plan_answer
from local.model.tool_phrases import tool_call_for

AGENT = "3f2a1b4c-1111-2222-3333-444455556666"
AGENT_TOOLS = {"get_agent_building_guide", "create_agent", "edit_agent", "get_agent", "validate_agent_graph",
               "fix_agent_graph", "get_current_time"}
SNAPSHOT = ('<builder_context>\n<graph id="g" version="1" node_count="1" edge_count="0"/>\n<nodes>\n'
            "- n: what time is it (b)\n</nodes>\n<links>\n</links>\n</builder_context>\n\n")


@pytest.mark.parametrize(("message", "name", "arguments"), [
    ("read the building guide", "get_agent_building_guide", {}),
    ("create an agent called Mailer", "create_agent", {"name": "Mailer"}),
    ('create an agent named "Daily digest", please', "create_agent", {"name": "Daily digest"}),
    ("show my agent", "get_agent", {"agent_id": ""}),
    (f"validate the agent {AGENT}", "validate_agent_graph", {"agent_id": AGENT}),
    (f"fix agent {AGENT}", "fix_agent_graph", {"agent_id": AGENT}),
])
def test_each_agent_phrase_calls_its_tool(message, name, arguments):
    call = tool_call_for(message, AGENT_TOOLS)
    assert call["name"] == name and json.loads(call["arguments"]) == arguments


def test_add_a_node_edits_the_agent_named_or_the_builders():
    bound = json.loads(tool_call_for("add a node send-email", AGENT_TOOLS)["arguments"])
    assert bound["agent_id"] == "" and bound["add_nodes"][0]["block_id"] == "send-email"
    named = json.loads(tool_call_for(f"add a node llm to agent {AGENT}", AGENT_TOOLS)["arguments"])
    assert named["agent_id"] == AGENT and named["add_nodes"][0]["id"].startswith("llm-")
    assert tool_call_for("add a node to my agent", AGENT_TOOLS) is None


def test_a_builder_snapshot_is_not_read_as_a_request():
    assert tool_call_for(SNAPSHOT + "hello", AGENT_TOOLS) is None  # "time" is only in a node's name
    assert tool_call_for(SNAPSHOT + "add a node llm", AGENT_TOOLS)["name"] == "edit_agent"


def body(*messages: dict, offered=AGENT_TOOLS) -> dict:
    return {"messages": list(messages), "tools": [{"function": {"name": n}} for n in offered]}


def guide_call() -> dict:
    return {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function", "function": {
        "name": "get_agent_building_guide", "arguments": "{}"}}]}


def test_the_guide_comes_first_then_the_tool_asked_for():
    ask = {"role": "user", "content": "create an agent called Mailer"}
    assert plan_answer(body(ask), 10)["tool_call"]["name"] == "get_agent_building_guide"
    after = plan_answer(body(ask, guide_call(), {"role": "tool", "tool_call_id": "c1", "content": "# Guide"}), 10)
    assert after["tool_call"]["name"] == "create_agent"
    done = plan_answer(body(ask, guide_call(), {"role": "tool", "content": "# Guide"},
                            {"role": "assistant", "tool_calls": [{"function": {"name": "create_agent"}}]},
                            {"role": "tool", "content": "{}"}), 10)
    assert done["tool_call"] is None and done["text"][0] == "The"


def test_in_the_builder_the_tool_is_called_at_once():
    builder_tools = AGENT_TOOLS - {"get_agent_building_guide", "create_agent"}
    plan = plan_answer(body({"role": "user", "content": SNAPSHOT + "add a node llm"}, offered=builder_tools), 10)
    assert plan["tool_call"]["name"] == "edit_agent"
    answer = plan_answer(body({"role": "user", "content": SNAPSHOT + "hello"}, offered=builder_tools), 10)
    assert "builder_context" not in " ".join(answer["text"])
