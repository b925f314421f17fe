"""The agent-building tools on the local graph store, run as the tool activity runs them: the builder
guard of edit_agent (the seed's three cases), each tool's work and refusals, and dry runs."""

import pytest

from activities.store import insert_rows
from models.agent_graph import GraphContent, GraphLink, GraphNode
from models.turn import NewMessageRow, ToolCall
from tests.support.tool_harness import ToolHarness

MISMATCH = ("builder_session_graph_mismatch: This chat is bound to the builder's current agent. Editing a different "
            "agent is not allowed here — open that agent in the builder instead.")


@pytest.fixture
def harness(settings) -> ToolHarness:
    return ToolHarness(settings)


def node(node_id: str, block: str = "block-A", **input_default) -> dict:
    return {"id": node_id, "block_id": block, "input_default": input_default}


def link(source: str, sink: str, out: str = "out", into: str = "in") -> dict:
    return {"source_id": source, "source_name": out, "sink_id": sink, "sink_name": into}


class Caller:
    """Calls tools in one session whose guide was read (the gate is tested on its own)."""

    def __init__(self, harness: ToolHarness, session_id: str, user_id: str, builder_graph_id: str | None = None,
                 dry_run: bool = False):
        self.harness, self.session_id, self.user_id = harness, session_id, user_id
        self.builder_graph_id, self.dry_run = builder_graph_id, dry_run

    async def __call__(self, tool: str, **arguments):
        result = await self.harness.run(self.harness.request(
            self.session_id, self.user_id, tool, arguments, builder_graph_id=self.builder_graph_id,
            dry_run=self.dry_run))
        return result.error if result.error is not None else result.output


async def caller(harness: ToolHarness, builder: bool = False, dry_run: bool = False) -> tuple[Caller, str]:
    """A caller, and a graph of its user's (the one a builder caller is bound to)."""
    session_id, user_id = await harness.new_session()
    graph = await harness.graphs.create(user_id, GraphContent(
        name="Bound", nodes=[GraphNode(id="n1", block_id="block-A")], links=[]))
    async with harness.sessions.begin() as db:  # the guide was read in an earlier round
        await insert_rows(db, session_id, "turn-0", [NewMessageRow(key="a0", role="assistant", tool_calls=[
            ToolCall(id="guide", name="get_agent_building_guide")])])
    return Caller(harness, session_id, user_id, graph.id if builder else None, dry_run), graph.id


# -- the builder guard (the seed's edit_agent builder guard tests) --

async def test_builder_session_rejects_foreign_agent_id(harness):
    call, _ = await caller(harness, builder=True)
    _, other = await caller(harness)
    assert await call("edit_agent", agent_id=other, name="x") == MISMATCH


async def test_builder_session_defaults_missing_agent_id(harness):
    call, bound = await caller(harness, builder=True)
    saved = await call("edit_agent", agent_id="", add_nodes=[node("n2")])
    assert saved["agent_id"] == bound and saved["graph_version"] == 2
    # The bound graph gone (the store answers nothing): the default still applied, so neither refusal.
    gone = Caller(harness, call.session_id, call.user_id, "00000000-0000-4000-8000-000000000000")
    error = await gone("edit_agent", name="x")
    assert error.startswith("agent_not_found") and "mismatch" not in error and "missing_agent_id" not in error


async def test_non_builder_session_keeps_missing_agent_id_error(harness):
    call, _ = await caller(harness)
    assert await call("edit_agent", name="x") == "missing_agent_id: Please provide the agent ID to edit."


async def test_every_graph_tool_of_a_builder_session_stays_on_its_graph(harness):
    call, bound = await caller(harness, builder=True)
    _, other = await caller(harness)
    for tool in ("get_agent", "validate_agent_graph", "fix_agent_graph"):
        assert (await call(tool, agent_id=other)).startswith("builder_session_graph_mismatch"), tool
    assert (await call("get_agent"))["id"] == bound


# -- the tools --

async def test_create_edit_and_read_an_agent(harness):
    call, _ = await caller(harness)
    created = await call("create_agent", name="Summariser", description="Summarises.",
                         nodes=[node("input", "text-input", name="Text"), node("sum", "llm")],
                         links=[link("input", "sum", "result", "text")])
    assert created["graph_version"] == 1 and created["agent_page_link"] == f"/build?flowID={created['agent_id']}"
    agent_id = created["agent_id"]
    saved = await call("edit_agent", agent_id=agent_id, version=1, add_nodes=[node("mail", "send-email")],
                       add_links=[link("sum", "mail", "summary", "body")],
                       change_nodes=[{"id": "sum", "input_default": {"style": "short"}}])
    assert saved["graph_version"] == 2
    graph = await call("get_agent", agent_id=agent_id)
    assert [n["id"] for n in graph["nodes"]] == ["input", "sum", "mail"]
    assert graph["nodes"][1]["input_default"] == {"style": "short"} and len(graph["links"]) == 2
    # Removing a node takes its links with it; a null removes an input default.
    await call("edit_agent", agent_id=agent_id, remove_nodes=["mail"], change_nodes=[{"id": "sum",
                                                                                     "input_default": {"style": None}}])
    graph = await call("get_agent", agent_id=agent_id)
    assert graph["version"] == 3 and [n["id"] for n in graph["nodes"]] == ["input", "sum"]
    assert graph["links"] == [link("input", "sum", "result", "text")] and graph["nodes"][1]["input_default"] == {}


async def test_a_stale_version_is_refused_and_nothing_is_saved(harness):
    call, graph_id = await caller(harness)
    await call("edit_agent", agent_id=graph_id, name="Renamed")
    error = await call("edit_agent", agent_id=graph_id, version=1, name="Again")
    assert error.startswith("version_conflict: The agent is at version 2, not 1")
    assert (await harness.graphs.get(call.user_id, graph_id)).name == "Renamed"


async def test_an_edit_that_adds_problems_is_refused_whole(harness):
    call, graph_id = await caller(harness)
    error = await call("edit_agent", agent_id=graph_id, add_nodes=[node("n2")],
                       add_links=[link("n1", "n2"), link("n2", "n1"), link("n2", "ghost")])
    assert error.startswith("validation_failed: Validation failed with 2 errors; nothing was saved.")
    assert "[cycle] Nodes n1 -> n2 -> n1" in error and "[link_to_missing_node, fixable]" in error
    assert (await harness.graphs.get(call.user_id, graph_id)).version == 1
    assert (await call("edit_agent", agent_id=graph_id, remove_nodes=["nope"])).startswith("invalid_edit")
    assert (await call("edit_agent", agent_id=graph_id)).startswith("invalid_edit: The edit changes nothing.")


async def test_a_graph_someone_else_owns_is_no_graph(harness):
    call, _ = await caller(harness)
    _, theirs = await caller(harness)
    for tool in ("edit_agent", "get_agent", "validate_agent_graph", "fix_agent_graph"):
        assert (await call(tool, agent_id=theirs, name="x") if tool == "edit_agent"
                else await call(tool, agent_id=theirs)).startswith("agent_not_found"), tool


async def test_validate_and_fix_a_saved_agent(harness):
    call, _ = await caller(harness)
    # Saved broken, as the builder may save work in progress through the REST API.
    broken = await harness.graphs.create(call.user_id, GraphContent(
        name="Broken", nodes=[GraphNode(id="a", block_id="x"), GraphNode(id="a", block_id="y"),
                              GraphNode(id="b", block_id="z")],
        links=[GraphLink(**link("a", "b")), GraphLink(**link("a", "b")), GraphLink(**link("b", "ghost")),
               GraphLink(**link("", "b"))]))
    report = await call("validate_agent_graph", agent_id=broken.id)
    assert report["valid"] is False and report["graph_version"] == 1
    assert [p["code"] for p in report["problems"]] == ["duplicate_node_id", "duplicate_link", "link_to_missing_node",
                                                       "dangling_link"]
    fixed = await call("fix_agent_graph", agent_id=broken.id, version=1)
    assert fixed["graph_version"] == 2 and len(fixed["fixed"]) == 4 and fixed["remaining_problems"] == []
    assert (await call("validate_agent_graph", agent_id=broken.id))["valid"] is True
    assert (await call("fix_agent_graph", agent_id=broken.id))["message"] == "Nothing to fix mechanically."


async def test_validate_and_fix_a_draft_save_nothing(harness):
    call, _ = await caller(harness)
    draft = {"nodes": [node("a"), node("b")], "links": [link("a", "b"), link("b", "a"), link("a", "zz")]}
    report = await call("validate_agent_graph", **draft)
    assert {p["code"] for p in report["problems"]} == {"cycle", "link_to_missing_node"} and "agent_id" not in report
    fixed = await call("fix_agent_graph", **draft)
    assert fixed["links"] == [link("a", "b"), link("b", "a")] and fixed["fixed"] == ["removed link a.out -> zz.in"]
    assert [p["code"] for p in fixed["remaining_problems"]] == ["cycle"]
    assert (await call("create_agent", name="Loop", **draft)).startswith("validation_failed")
    assert (await call("validate_agent_graph", agent_id="x", nodes=[])).startswith("invalid_arguments")
    _, total = await harness.graphs.list(call.user_id, 10, 0)
    assert total == 1  # only the caller's own graph: nothing was created


async def test_a_dry_run_saves_no_graph_but_still_reads_them(harness):
    call, graph_id = await caller(harness, dry_run=True)
    simulated = await call("edit_agent", agent_id=graph_id, name="Never")
    assert simulated["dry_run"] is True and simulated["ran"] is False and simulated["input"]["name"] == "Never"
    assert (await call("create_agent", name="Never"))["ran"] is False
    assert (await harness.graphs.get(call.user_id, graph_id)).version == 1
    assert (await call("get_agent", agent_id=graph_id))["version"] == 1
    assert (await call("validate_agent_graph", agent_id=graph_id))["valid"] is True


async def test_the_guide_tool_gives_the_guide(harness):
    call, _ = await caller(harness)
    guide = await call("get_agent_building_guide")
    assert guide.startswith("# Building agent graphs") and "AgentExecutorBlock" in guide
