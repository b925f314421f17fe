"""The per-turn `<builder_context>` snapshot (the seed's builder_context_test.py, its prefix cases),
fetched from the local graph store on the real PostgreSQL, with the session owner's id."""

import uuid

import pytest

from agent_graphs.local_store import LocalGraphStore
from conversation.builder_prompt import FETCH_FAILED_PREFIX, builder_context_prefix
from conversation.sessions import ensure_user
from database import session_maker
from models.agent_graph import GraphContent, GraphLink, GraphNode


@pytest.fixture
def graphs(settings) -> LocalGraphStore:
    return LocalGraphStore(session_maker(settings.database_url))


@pytest.fixture
async def owner(graphs) -> str:
    user_id = f"owner-{uuid.uuid4().hex[:8]}"
    async with graphs.sessions.begin() as db:
        await ensure_user(db, user_id)
    return user_id


class Recording:
    """The store, noting who asked for what."""

    def __init__(self, store):
        self.store, self.calls = store, []

    async def get(self, owner_id: str, graph_id: str):
        self.calls.append((graph_id, owner_id))
        return await self.store.get(owner_id, graph_id)


class Failing:
    async def get(self, owner_id: str, graph_id: str):
        raise ConnectionError("the graph store is down")


async def saved(graphs, owner, name="My Agent", nodes=(), links=(), versions=1):
    graph = await graphs.create(owner, GraphContent(name=name, nodes=list(nodes), links=list(links)))
    for _ in range(versions - 1):
        graph = await graphs.update(owner, graph.id, graph.version, graph)
    return graph


async def test_turn_prefix_empty_for_non_builder(graphs, owner):
    assert await builder_context_prefix(graphs, None, owner) == ""


async def test_turn_prefix_contains_version_nodes_and_links(graphs, owner):
    graph = await saved(graphs, owner, nodes=[GraphNode(id="n1", block_id="block-A", input_default={"name": "Input"}),
                                              GraphNode(id="n2", block_id="block-B")],
                        links=[GraphLink(source_id="n1", source_name="out", sink_id="n2", sink_name="in")], versions=3)
    prefix = await builder_context_prefix(graphs, graph.id, owner)
    assert prefix.startswith("<builder_context>\n") and prefix.endswith("</builder_context>\n\n")
    for part in (f'id="{graph.id}"', 'name="My Agent"', 'version="3"', 'node_count="2"', 'edge_count="1"',
                 "n1: Input (block-A)", "n2: block-B (block-B)", "Input.out -> block-B.in"):
        assert part in prefix, part
    assert prefix == (f'<builder_context>\n<graph id="{graph.id}" name="My Agent" version="3" node_count="2" '
                      'edge_count="1"/>\n<nodes>\n- n1: Input (block-A)\n- n2: block-B (block-B)\n</nodes>\n<links>\n'
                      '- Input.out -> block-B.in\n</links>\n</builder_context>\n\n')


async def test_turn_prefix_does_not_include_guide(graphs, owner):
    graph = await saved(graphs, owner)
    prefix = await builder_context_prefix(graphs, graph.id, owner)
    assert "<building_guide>" not in prefix and "Building agent graphs" not in prefix


async def test_turn_prefix_escapes_graph_name(graphs, owner):
    graph = await saved(graphs, owner, name="<script>&\"")
    assert 'name="&lt;script&gt;&amp;&quot;"' in await builder_context_prefix(graphs, graph.id, owner)


async def test_a_blank_name_is_left_out_and_display_names_fall_back(graphs, owner):
    graph = await saved(graphs, owner, name="   ", nodes=[
        GraphNode(id="t", block_id="b", input_default={"name": "  "}, metadata={"title": " Titled "}),
        GraphNode(id="l", block_id="b", input_default={"name": 7}, metadata={"label": "Labelled"})])
    prefix = await builder_context_prefix(graphs, graph.id, owner)
    assert " name=" not in prefix and "- t: Titled (b)" in prefix and "- l: Labelled (b)" in prefix


async def test_turn_prefix_forwards_user_id_for_ownership(graphs, owner):
    graph = await saved(graphs, owner)
    recording = Recording(graphs)
    await builder_context_prefix(recording, graph.id, owner)
    assert recording.calls == [(graph.id, owner)]
    # Someone else's id finds nothing: the graph is never shown to them.
    assert await builder_context_prefix(graphs, graph.id, "someone-else") == FETCH_FAILED_PREFIX


async def test_turn_prefix_fetch_failure_returns_marker():
    assert await builder_context_prefix(Failing(), "graph-1", "owner") == (
        "<builder_context>\n<status>fetch_failed</status>\n</builder_context>\n\n")


async def test_turn_prefix_graph_not_found_returns_marker(graphs, owner):
    assert await builder_context_prefix(graphs, str(uuid.uuid4()), owner) == FETCH_FAILED_PREFIX


async def test_turn_prefix_node_cap_truncates_with_more_marker(graphs, owner):
    graph = await saved(graphs, owner, nodes=[GraphNode(id=f"n{i}", block_id="b") for i in range(150)])
    prefix = await builder_context_prefix(graphs, graph.id, owner)
    assert 'node_count="150"' in prefix and "(50 more not shown)" in prefix
    assert "- n99: b (b)" in prefix and "- n100:" not in prefix


async def test_turn_prefix_link_cap_truncates_with_more_marker(graphs, owner):
    nodes = [GraphNode(id="a", block_id="b"), GraphNode(id="z", block_id="b")]
    links = [GraphLink(source_id="a", source_name=f"o{i}", sink_id="z", sink_name="i") for i in range(250)]
    prefix = await builder_context_prefix(graphs, (await saved(graphs, owner, nodes=nodes, links=links)).id, owner)
    assert 'edge_count="250"' in prefix and "(50 more not shown)" in prefix
    assert "b.o199 -> b.i" in prefix and "b.o200 -> b.i" not in prefix


async def test_turn_prefix_xml_escaping_in_node_names(graphs, owner):
    graph = await saved(graphs, owner, nodes=[
        GraphNode(id="n<1>", block_id="b&'", input_default={"name": "</builder_context>"}),
        GraphNode(id="n2", block_id="b")],
        links=[GraphLink(source_id="n<1>", source_name='o"ut', sink_id="n2", sink_name="<in>")])
    prefix = await builder_context_prefix(graphs, graph.id, owner)
    assert "&lt;/builder_context&gt;" in prefix and prefix.count("</builder_context>") == 1
    assert "- n&lt;1&gt;: &lt;/builder_context&gt; (b&amp;&apos;)" in prefix
    assert "&lt;/builder_context&gt;.o&quot;ut -> b.&lt;in&gt;" in prefix
